"""The Capture operator."""

from __future__ import annotations

import bpy

from ..operator_base import ReportingOperator, busy_reason, refuse
from . import workflow


class DEEPEXPR_OT_capture(ReportingOperator, bpy.types.Operator):
    bl_idname = "deepexpr.capture"
    bl_label = "Capture"
    bl_description = "Grab the source image and find its face, landmarks and expression"

    @classmethod
    def poll(cls, context):
        if context.scene is None:
            return False
        p = context.scene.deepexpr
        if p.busy:
            return refuse(cls, busy_reason(p))
        if p.source == "IMAGE" and not p.image_path:
            return refuse(cls, "Choose an image file first")
        return True

    def execute(self, context):
        return self.start_workflow(context, workflow.capture)


classes = (DEEPEXPR_OT_capture,)
