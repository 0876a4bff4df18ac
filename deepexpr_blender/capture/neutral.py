"""Capture my neutral: the actor's resting face, captured once from the same source as Capture (webcam, image,
movie strip) and kept in ``Scene.deepexpr`` (its 68 landmarks and class probabilities). Every retrieval then
sends it (``neutral`` in docs/protocol.md) so the backend can compare the face with its own neutral, not with
an average one (a resting face that looks stern should not retrieve anger). Clear forgets it."""

from __future__ import annotations

import json

import bpy

from .. import jobs
from ..operator_base import ReportingOperator, scene_is_idle
from ..session import connection
from . import workflow


def capture_neutral(scene) -> jobs.Job:
    """Grab the source image, then store its landmarks and class probabilities as the actor's neutral."""
    client = connection.require_backend()
    got: dict = {}

    def store(image: str, job: jobs.Job) -> None:
        job.say("Reading your neutral face...")

        def landmarks(res: dict) -> None:
            got["points"] = res["points"]
            finish(image, job)

        def classified(res: dict) -> None:
            got["probabilities"] = res["probabilities"]
            finish(image, job)

        client.request("landmarks", {"image": image}, job.guard(landmarks), job.on_error)
        client.request("classify", {"image": image}, job.guard(classified), job.on_error)

    def finish(image: str, job: jobs.Job) -> None:
        if len(got) < 2:
            return
        p = job.props()
        if p is None:
            return job.finish("Neutral captured (its scene is gone)", "INFO")
        p.neutral_points = json.dumps(got["points"])
        p.neutral_probabilities = json.dumps(got["probabilities"])
        p.neutral_image = image
        p.use_neutral = True
        lead = max(got["probabilities"], key=got["probabilities"].get)
        job.finish(f"Neutral captured (it reads as {lead}: retrieval now compares with it)")

    return workflow.capture(scene, on_image=store)


class DEEPEXPR_OT_capture_neutral(ReportingOperator, bpy.types.Operator):
    bl_idname = "deepexpr.capture_neutral"
    bl_label = "Capture my neutral"
    bl_description = (
        "Hold a relaxed, neutral face and capture it once: retrieval then compares each face with yours, "
        "not with an average face"
    )

    @classmethod
    def poll(cls, context):
        return scene_is_idle(cls, context)

    def execute(self, context):
        return self.start_workflow(context, capture_neutral)


class DEEPEXPR_OT_clear_neutral(bpy.types.Operator):
    bl_idname = "deepexpr.clear_neutral"
    bl_label = "Clear neutral"
    bl_description = "Forget the captured neutral face"

    def execute(self, context):
        p = context.scene.deepexpr
        p.neutral_points = p.neutral_probabilities = p.neutral_image = ""
        return {"FINISHED"}


def draw_neutral(layout, props) -> None:
    row = layout.row(align=True)
    row.operator("deepexpr.capture_neutral", icon="USER")
    if props.neutral_points:
        row.operator("deepexpr.clear_neutral", text="", icon="X")
        layout.prop(props, "use_neutral")


classes = (DEEPEXPR_OT_capture_neutral, DEEPEXPR_OT_clear_neutral)
