"""The Batch retrieval operator (modal: progress in the status bar, Esc cancels and keeps what was keyed; the
whole run is one undo step)."""

from __future__ import annotations

import bpy
from bpy.props import EnumProperty

from .. import poses, sequencer
from ..operator_base import RequestModal, has_target, refuse, scene_is_idle
from . import workflow


def _in_sequencer(context) -> bool:
    area = getattr(context, "area", None)
    return area is not None and area.type == "SEQUENCE_EDITOR"


class DEEPEXPR_OT_batch_retrieve(RequestModal, bpy.types.Operator):
    bl_idname = "deepexpr.batch_retrieve"
    bl_label = "Batch retrieval"
    bl_description = (
        "Retrieve a pose for every n-th frame of a video or image folder (in the Sequencer: the active movie "
        "strip) and key them on the Target, smoothed, replacing the keys in that frame range"
    )
    bl_options = {"REGISTER", "UNDO"}
    source: EnumProperty(
        name="Source",
        items=[
            ("AUTO", "Automatic", "The active movie strip when run from the Sequencer, else the Input"),
            ("INPUT", "Input", "The Input of the Batch panel"),
            ("STRIP", "Movie strip", "The active movie strip, keyed under it"),
        ],
        default="AUTO",
        options={"SKIP_SAVE"},
    )

    def from_strip(self, context) -> bool:
        if self.source == "AUTO":
            return _in_sequencer(context) and sequencer.active_movie_strip(context.scene) is not None
        return self.source == "STRIP"

    @classmethod
    def poll(cls, context):
        if not (scene_is_idle(cls, context) and has_target(cls, context)):
            return False
        p = context.scene.deepexpr
        if not poses.can_key(p.target):
            return refuse(cls, poses.cannot_key_reason(p.target))
        if _in_sequencer(context) and sequencer.active_movie_strip(context.scene) is not None:
            return True
        if not p.batch_input:
            return refuse(
                cls,
                "Choose an Input: a video or a folder of images (Batch panel), or run it from the "
                "Sequencer with a movie strip active",
            )
        return True

    def start_job(self, context):
        return workflow.start_batch(context.scene, from_strip=self.from_strip(context))


classes = (DEEPEXPR_OT_batch_retrieve,)
