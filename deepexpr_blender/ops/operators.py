"""Operators: thin wrappers over ``workflows`` that report errors the Blender way."""

from __future__ import annotations

import os

import bpy
from bpy.props import IntProperty, StringProperty

from .. import rig_library, toon
from ..client import BackendError
from ..core.library_format import LibraryError
from . import runtime, workflows
from .keying import KeyingError

USER_ERRORS = (BackendError, KeyingError, LibraryError, ValueError, OSError)


class _Reporting:
    def fail(self, err: Exception) -> set[str]:
        self.report({"ERROR"}, str(err))
        return {"CANCELLED"}

    def run(self, context, work) -> set[str]:
        """Start ``work(scene)`` (an asynchronous workflow); a user error is reported and clears ``busy``."""
        try:
            work(context.scene)
        except USER_ERRORS as err:
            context.scene.deepexpr.busy = False
            return self.fail(err)
        return {"FINISHED"}


class DEEPEXPR_OT_check_backend(_Reporting, bpy.types.Operator):
    bl_idname = "deepexpr.check_backend"
    bl_label = "Check backend"
    bl_description = "Start the DeepExpr backend and show its version, device and models"

    def execute(self, context):
        runtime.check_backend()
        return {"FINISHED"}


class DEEPEXPR_OT_library_folder_add(bpy.types.Operator):
    bl_idname = "deepexpr.library_folder_add"
    bl_label = "Add library folder"
    bl_description = "Add a pose library folder to the list the panel offers"

    def execute(self, context):
        runtime.prefs().library_folders.add()
        return {"FINISHED"}


class DEEPEXPR_OT_library_folder_remove(bpy.types.Operator):
    bl_idname = "deepexpr.library_folder_remove"
    bl_label = "Remove library folder"
    bl_description = "Remove this pose library folder from the list"
    index: IntProperty()

    def execute(self, context):
        runtime.prefs().library_folders.remove(self.index)
        return {"FINISHED"}


class DEEPEXPR_OT_capture(_Reporting, bpy.types.Operator):
    bl_idname = "deepexpr.capture"
    bl_label = "Capture"
    bl_description = "Grab the source image and find its face, landmarks and expression"

    @classmethod
    def poll(cls, context):
        return context.scene is not None and not context.scene.deepexpr.busy

    def execute(self, context):
        return self.run(context, workflows.capture)


class DEEPEXPR_OT_find_poses(_Reporting, bpy.types.Operator):
    bl_idname = "deepexpr.find_poses"
    bl_label = "Find poses"
    bl_description = "Rank the chosen pose library against the captured face"

    @classmethod
    def poll(cls, context):
        p = context.scene.deepexpr
        return bool(p.captured_path) and not p.busy

    def execute(self, context):
        return self.run(context, workflows.find_poses)


class DEEPEXPR_OT_key_pose(_Reporting, bpy.types.Operator):
    bl_idname = "deepexpr.key_pose"
    bl_label = "Key pose"
    bl_description = "Key this candidate's pose on the target at the current frame"
    bl_options = {"REGISTER", "UNDO"}
    index: IntProperty()

    @classmethod
    def poll(cls, context):
        return context.scene.deepexpr.target is not None

    def execute(self, context):
        try:
            keyed = workflows.key_candidate(context.scene, self.index)
        except USER_ERRORS as err:
            return self.fail(err)
        self.report({"INFO"}, f"Keyed {len(keyed)} channels at frame {context.scene.frame_current}")
        return {"FINISHED"}


class DEEPEXPR_OT_add_character(_Reporting, bpy.types.Operator):
    bl_idname = "deepexpr.add_character"
    bl_label = "Add character"
    bl_description = "Add one of DeepExpr's toon characters (the built-in library's poses key it) and target it"
    bl_options = {"REGISTER", "UNDO"}
    character: StringProperty(default="pip")

    def execute(self, context):
        spec = next((c for c in toon.CHARACTERS if c.name == self.character), None)
        if spec is None:
            return self.fail(ValueError(f"unknown character {self.character!r}"))
        obj = toon.build_character(spec, context.collection)
        obj.location = context.scene.cursor.location
        context.scene.deepexpr.target = obj
        return {"FINISHED"}


class DEEPEXPR_OT_build_library(_Reporting, bpy.types.Operator):
    bl_idname = "deepexpr.build_library"
    bl_label = "Build library from rig"
    bl_description = "Make a pose library from the active object's saved shape-key poses or armature poses"

    @classmethod
    def poll(cls, context):
        obj = context.active_object
        return obj is not None and obj.type in {"MESH", "ARMATURE"}

    def execute(self, context):
        obj = context.active_object
        try:
            poses = rig_library.shape_key_poses(obj) if obj.type == "MESH" else rig_library.armature_poses(obj)
            out = os.path.join(runtime.user_dir("libraries"), bpy.path.clean_name(obj.name))
            rig_library.build_library(out, poses, rig=obj, name=obj.name)
        except USER_ERRORS as err:
            return self.fail(err)
        props = context.scene.deepexpr
        props.library_path, props.library, props.target = out, "CUSTOM", obj
        self.report({"INFO"}, f"Library of {len(poses)} poses written to {out}")
        return {"FINISHED"}


class _Modal(_Reporting):
    """Shared modal loop: watch a background request, show progress, Esc cancels."""

    _timer = None

    def start_modal(self, context) -> set[str]:
        wm = context.window_manager
        self._timer = wm.event_timer_add(0.1, window=context.window)
        wm.modal_handler_add(self)
        wm.progress_begin(0, 1)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        props = context.scene.deepexpr
        if event.type == "ESC":
            runtime.get_client().cancel(self.request_id())
            self.report({"WARNING"}, "Cancelling...")
        if event.type == "TIMER":
            runtime.drain()
            context.window_manager.progress_update(props.progress)
            context.workspace.status_text_set(f"DeepExpr: {props.status}  (Esc to cancel)")
            if self.finished():
                return self.cleanup(context)
        return {"PASS_THROUGH"}

    def cleanup(self, context) -> set[str]:
        wm = context.window_manager
        wm.event_timer_remove(self._timer)
        wm.progress_end()
        context.workspace.status_text_set(None)
        self.report({"INFO"}, context.scene.deepexpr.status)
        return {"FINISHED"}


class DEEPEXPR_OT_batch_retrieve(_Modal, bpy.types.Operator):
    bl_idname = "deepexpr.batch_retrieve"
    bl_label = "Batch retrieval"
    bl_description = "Retrieve a pose for every n-th frame of a video or image folder and key them, smoothed"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        p = context.scene.deepexpr
        return p.target is not None and bool(p.batch_input) and not p.busy

    def execute(self, context):
        try:
            self.run = workflows.start_batch(context.scene)
        except USER_ERRORS as err:
            context.scene.deepexpr.busy = False
            return self.fail(err)
        return self.start_modal(context)

    def request_id(self) -> int:
        return self.run.request_id

    def finished(self) -> bool:
        return self.run.done


class DEEPEXPR_OT_generate_transition(_Modal, bpy.types.Operator):
    bl_idname = "deepexpr.generate_transition"
    bl_label = "Generate transition"
    bl_description = "Generate an expression transition from the source face and add it as an image strip"

    @classmethod
    def poll(cls, context):
        p = context.scene.deepexpr
        return bool(p.seq_source or p.captured_path) and not p.busy

    def execute(self, context):
        try:
            self.state = workflows.start_transition(context.scene)
        except USER_ERRORS as err:
            context.scene.deepexpr.busy = False
            return self.fail(err)
        return self.start_modal(context)

    def request_id(self) -> int:
        return self.state["id"]

    def finished(self) -> bool:
        return self.state["done"]


classes = (
    DEEPEXPR_OT_check_backend,
    DEEPEXPR_OT_library_folder_add,
    DEEPEXPR_OT_library_folder_remove,
    DEEPEXPR_OT_capture,
    DEEPEXPR_OT_find_poses,
    DEEPEXPR_OT_key_pose,
    DEEPEXPR_OT_add_character,
    DEEPEXPR_OT_build_library,
    DEEPEXPR_OT_batch_retrieve,
    DEEPEXPR_OT_generate_transition,
)
