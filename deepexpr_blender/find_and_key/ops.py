"""Find poses and Key pose operators."""

from __future__ import annotations

import bpy
from bpy.props import IntProperty

from ..operator_base import USER_ERRORS, ReportingOperator, RequestModal, busy_reason, has_target, refuse
from . import workflow


class DEEPEXPR_OT_find_poses(RequestModal, bpy.types.Operator):
    bl_idname = "deepexpr.find_poses"
    bl_label = "Find poses"
    bl_description = "Rank the chosen pose library against the captured face"

    @classmethod
    def poll(cls, context):
        p = context.scene.deepexpr
        if p.busy:
            return refuse(cls, busy_reason(p))
        if not p.captured_path:
            return refuse(cls, "Capture a face first (Capture panel): no face is captured")
        return True

    def start_job(self, context):
        return workflow.find_poses(context.scene)


class DEEPEXPR_OT_key_pose(ReportingOperator, bpy.types.Operator):
    bl_idname = "deepexpr.key_pose"
    bl_label = "Key pose"
    bl_description = "Key this candidate's pose on the target at the current frame"
    bl_options = {"REGISTER", "UNDO"}
    index: IntProperty()

    @classmethod
    def poll(cls, context):
        return has_target(cls, context)

    def execute(self, context):
        try:
            keyed = workflow.key_candidate(context.scene, self.index)
        except USER_ERRORS as err:
            return self.fail(err)
        self.report({"INFO"}, f"Keyed {len(keyed)} channels at frame {context.scene.frame_current}")
        return {"FINISHED"}


classes = (DEEPEXPR_OT_find_poses, DEEPEXPR_OT_key_pose)
