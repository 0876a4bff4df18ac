"""Build library from rig, and Add character (one of the toon characters the built-in library keys)."""

from __future__ import annotations

import json
import os

import bpy
from bpy.props import BoolProperty, StringProperty

from .. import paths, poses, toon
from ..operator_base import ReportingOperator, RequestModal, busy_reason, refuse
from . import placement
from .job import LibraryJob


class DEEPEXPR_OT_add_character(ReportingOperator, bpy.types.Operator):
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
        placement.place_clear(obj, context, context.scene.cursor.location.copy())
        placement.make_target(obj, context)
        self.report({"INFO"}, f"Added {obj.name} at {tuple(round(v, 2) for v in obj.location)}: it is the Target")
        return {"FINISHED"}


class DEEPEXPR_OT_build_library(RequestModal, bpy.types.Operator):
    bl_idname = "deepexpr.build_library"
    bl_label = "Build library from rig"
    bl_description = (
        "Make a pose library from the active character's expressions (VRM table, ARKit, FACS or named keys), "
        "pose markers and pose assets: face-on thumbnails, labels, landmarks"
    )
    poses_json: StringProperty(options={"HIDDEN", "SKIP_SAVE"}, description="The poses to build (the dialog's)")
    animation: BoolProperty(name="Keyed frames as poses", default=False, options={"SKIP_SAVE"})
    overwrite: BoolProperty(name="Replace the existing library", default=False, options={"SKIP_SAVE"})

    @classmethod
    def poll(cls, context):
        obj = context.active_object
        if context.scene.deepexpr.busy:
            return refuse(cls, busy_reason(context.scene.deepexpr))
        if obj is None:
            return refuse(cls, "Select the rig first: a mesh with shape keys or an armature")
        if not poses.kinds_finding_in(obj):
            return refuse(cls, f"{obj.name} is a {obj.type.lower()}: select a mesh with shape keys or an armature")
        return True

    blocks_input = True  # the rig is posed in turn while thumbnails render: nothing else may change it

    def start_job(self, context):
        obj = context.active_object
        found = json.loads(self.poses_json) if self.poses_json else poses.find_poses(obj, self.animation)
        job = LibraryJob(context.scene, obj, found, library_folder(obj), self.overwrite)
        if bpy.app.background or context.window is None:
            job.run()  # no event loop: build it all now (user errors reach the caller)
        else:
            job.step()  # the checks and the first thumbnail now: a refusal is reported at once
        return job

    def advance(self, context) -> None:
        self.job.step()

    def cancel_work(self, job) -> None:
        job.cancel()


def library_folder(obj) -> str:
    """Where the library of ``obj``'s character goes: the extension's user folder, named after the character."""
    from ..rigs.character import character_root

    return os.path.join(paths.user_dir("libraries"), bpy.path.clean_name(character_root(obj).name))


classes = (DEEPEXPR_OT_add_character, DEEPEXPR_OT_build_library)
