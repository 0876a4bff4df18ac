"""The Generate transition operator (modal: progress, Esc cancels)."""

from __future__ import annotations

import bpy

from ..operator_base import RequestModal
from . import workflow


class DEEPEXPR_OT_generate_transition(RequestModal, bpy.types.Operator):
    bl_idname = "deepexpr.generate_transition"
    bl_label = "Generate transition"
    bl_description = "Generate an expression transition from the source face and add it as an image strip"

    @classmethod
    def poll(cls, context):
        p = context.scene.deepexpr
        return bool(p.seq_source or p.captured_path) and not p.busy

    def start_job(self, scene):
        return workflow.start_transition(scene)


classes = (DEEPEXPR_OT_generate_transition,)
