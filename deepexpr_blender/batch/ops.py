"""The Batch retrieval operator (modal: progress, Esc cancels and keeps what was keyed)."""

from __future__ import annotations

import bpy

from ..operator_base import RequestModal
from . import workflow


class DEEPEXPR_OT_batch_retrieve(RequestModal, bpy.types.Operator):
    bl_idname = "deepexpr.batch_retrieve"
    bl_label = "Batch retrieval"
    bl_description = "Retrieve a pose for every n-th frame of a video or image folder and key them, smoothed"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        p = context.scene.deepexpr
        return p.target is not None and bool(p.batch_input) and not p.busy

    def start_job(self, scene):
        return workflow.start_batch(scene)


classes = (DEEPEXPR_OT_batch_retrieve,)
