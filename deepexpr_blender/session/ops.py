"""Operators of the backend session: start/check the backend, manage the library folders list."""

from __future__ import annotations

import bpy
from bpy.props import IntProperty

from .. import prefs
from . import connection


class DEEPEXPR_OT_check_backend(bpy.types.Operator):
    bl_idname = "deepexpr.check_backend"
    bl_label = "Check backend"
    bl_description = "Start the DeepExpr backend and show its version, device and models"

    def execute(self, context):
        connection.check_backend()
        return {"FINISHED"}


class DEEPEXPR_OT_library_folder_add(bpy.types.Operator):
    bl_idname = "deepexpr.library_folder_add"
    bl_label = "Add library folder"
    bl_description = "Add a pose library folder to the list the panel offers"

    def execute(self, context):
        prefs.get().library_folders.add()
        return {"FINISHED"}


class DEEPEXPR_OT_library_folder_remove(bpy.types.Operator):
    bl_idname = "deepexpr.library_folder_remove"
    bl_label = "Remove library folder"
    bl_description = "Remove this pose library folder from the list"
    index: IntProperty()

    def execute(self, context):
        prefs.get().library_folders.remove(self.index)
        return {"FINISHED"}


classes = (
    DEEPEXPR_OT_check_backend,
    DEEPEXPR_OT_library_folder_add,
    DEEPEXPR_OT_library_folder_remove,
)
