"""Capture my neutral: the actor's resting face, captured once from the same source as Capture (webcam, image,
movie strip) and kept in ``Scene.deepexpr`` (its 68 landmarks and class probabilities). Every retrieval then
sends it (``neutral`` in docs/protocol.md) so the backend can compare the face with its own neutral, not with
an average one (a resting face that looks stern should not retrieve anger). Clear forgets it."""

from __future__ import annotations

import json

import bpy

from .. import jobs
from ..operator_base import ReportingOperator
from ..session import connection
from . import workflow


def capture_neutral(scene) -> None:
    """Grab the source image, then store its landmarks and class probabilities as the actor's neutral."""
    props, name = scene.deepexpr, scene.name
    client = connection.require_backend()
    props.busy, props.status = True, "Capturing your neutral face..."
    got: dict = {}

    def store(image: str) -> None:
        def landmarks(res: dict) -> None:
            got["points"] = res["points"]
            finish(image)

        def classified(res: dict) -> None:
            got["probabilities"] = res["probabilities"]
            finish(image)

        client.request("landmarks", {"image": image}, landmarks, jobs.on_failure(name, "Neutral capture"))
        client.request("classify", {"image": image}, classified, jobs.on_failure(name, "Neutral capture"))

    def finish(image: str) -> None:
        if len(got) < 2:
            return
        p = jobs.scene(name).deepexpr
        p.neutral_points = json.dumps(got["points"])
        p.neutral_probabilities = json.dumps(got["probabilities"])
        p.neutral_image = image
        p.use_neutral = True
        p.busy = False
        lead = max(got["probabilities"], key=got["probabilities"].get)
        p.status = f"Neutral captured (it reads as {lead}: retrieval now compares with it)"

    workflow.capture(scene, on_image=store)


class DEEPEXPR_OT_capture_neutral(ReportingOperator, bpy.types.Operator):
    bl_idname = "deepexpr.capture_neutral"
    bl_label = "Capture my neutral"
    bl_description = (
        "Hold a relaxed, neutral face and capture it once: retrieval then compares each face with yours, "
        "not with an average face"
    )

    @classmethod
    def poll(cls, context):
        return context.scene is not None and not context.scene.deepexpr.busy

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
