"""Live, Record, Stop and Sparse keys operators. Live is modal while the UI has a window: its timer drains the
backend's results quickly (low latency), Esc ends live mode; nothing blocks."""

from __future__ import annotations

import bpy

from ..operator_base import USER_ERRORS, ReportingOperator, RequestModal, has_target, refuse, scene_is_idle
from ..session import connection
from . import workflow

DRAIN_INTERVAL = 1 / 60  # the Live operator's timer: results wait at most this long before they are applied


class DEEPEXPR_OT_live(ReportingOperator, bpy.types.Operator):
    bl_idname = "deepexpr.live"
    bl_label = "Live"
    bl_description = "Start live mode: the target wears the pose closest to your face (Esc or Stop ends it)"

    _timer = None

    @classmethod
    def poll(cls, context):
        return scene_is_idle(cls, context)

    def execute(self, context):
        scene = context.scene
        if workflow.session(scene) is not None:
            workflow.stop_live(scene)
            return {"FINISHED"}
        try:
            workflow.start_live(scene)
        except USER_ERRORS as err:
            return self.fail(err)
        if bpy.app.background or context.window is None:  # no event loop: the session timer drains the results
            return {"FINISHED"}
        wm = context.window_manager
        self._timer = wm.event_timer_add(DRAIN_INTERVAL, window=context.window)
        wm.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        scene = context.scene
        if event.type == "ESC" and event.value in ("PRESS", "NOTHING"):
            workflow.stop_live(scene, "Live ended (Esc)")
        elif event.type == "TIMER":
            connection.drain()
        if workflow.session(scene) is None:
            return self.finish(context)
        return {"PASS_THROUGH"}

    def finish(self, context):
        if self._timer is not None:
            context.window_manager.event_timer_remove(self._timer)
            self._timer = None
        self.report({"INFO"}, context.scene.deepexpr_live.status or "Live ended")
        return {"FINISHED"}


class DEEPEXPR_OT_live_stop(ReportingOperator, bpy.types.Operator):
    bl_idname = "deepexpr.live_stop"
    bl_label = "Stop"
    bl_description = "End live mode (keys recorded so far are kept)"

    def execute(self, context):
        workflow.stop_live(context.scene)
        return {"FINISHED"}


class DEEPEXPR_OT_live_record(ReportingOperator, bpy.types.Operator):
    bl_idname = "deepexpr.live_record"
    bl_label = "Record"
    bl_description = "Key the pose changes at the scene frame, in real time, until Record is pressed again"

    @classmethod
    def poll(cls, context):
        if workflow.session(context.scene) is None:
            return refuse(cls, "Start Live first: Record keys what live mode shows")
        return True

    def execute(self, context):
        try:
            workflow.toggle_record(context.scene)
        except USER_ERRORS as err:
            return self.fail(err)
        return {"FINISHED"}


class DEEPEXPR_OT_sparse_keys(RequestModal, bpy.types.Operator):
    bl_idname = "deepexpr.sparse_keys"
    bl_label = "Key poses from performance"
    bl_description = (
        "Read a performance (a video, or the last live take) and key only its key poses on the target: "
        "held expressions, eased between"
    )
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        return scene_is_idle(cls, context) and has_target(cls, context)

    def start_job(self, context):
        return workflow.start_sparse(context.scene)


classes = (DEEPEXPR_OT_live, DEEPEXPR_OT_live_stop, DEEPEXPR_OT_live_record, DEEPEXPR_OT_sparse_keys)
