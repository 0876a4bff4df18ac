"""The Capture operator."""

from __future__ import annotations

import bpy

from ..operator_base import ReportingOperator
from . import workflow


class DEEPEXPR_OT_capture(ReportingOperator, bpy.types.Operator):
    bl_idname = "deepexpr.capture"
    bl_label = "Capture"
    bl_description = "Grab the source image and find its face, landmarks and expression"

    @classmethod
    def poll(cls, context):
        return context.scene is not None and not context.scene.deepexpr.busy

    def execute(self, context):
        return self.start_workflow(context, workflow.capture)


classes = (DEEPEXPR_OT_capture,)
