"""The Generate transition operator (modal: progress in the status bar, Esc cancels)."""

from __future__ import annotations

import bpy

from ..operator_base import RequestModal, busy_reason, refuse
from . import workflow


class DEEPEXPR_OT_generate_transition(RequestModal, bpy.types.Operator):
    bl_idname = "deepexpr.generate_transition"
    bl_label = "Generate transition"
    bl_description = "Generate an expression transition from the source face and add it as an image strip"

    @classmethod
    def poll(cls, context):
        p = context.scene.deepexpr
        if p.busy:
            return refuse(cls, busy_reason(p))
        if not (p.seq_source or p.captured_path):
            return refuse(cls, "Choose a Source face (Transition panel) or capture a face first")
        return True

    def start_job(self, context):
        return workflow.start_transition(context.scene)


classes = (DEEPEXPR_OT_generate_transition,)
