"""Add-on preferences (machine settings): the backend interpreter, device, library folders, log level."""

from __future__ import annotations

import os

import bpy
from bpy.props import CollectionProperty, EnumProperty, IntProperty, StringProperty
from bpy.types import AddonPreferences, PropertyGroup

from . import status
from .client import find_project_python

ADDON = __package__  # the add-on's package name (works installed as an extension or from source)


def default_threads() -> int:
    """Half the CPU cores, 1 to 4: the backend leaves the rest to Blender (issue 11: a busy Blender made batch
    retrieval 3x slower with all cores, 17x under outside load)."""
    return max(1, min(4, (os.cpu_count() or 2) // 2))


def get():
    """The add-on's preferences, or None when it is not enabled (e.g. while unregistering)."""
    addon = bpy.context.preferences.addons.get(ADDON)
    return addon.preferences if addon else None


class DEEPEXPR_PG_library_folder(PropertyGroup):
    path: StringProperty(name="Folder", subtype="DIR_PATH", description="A pose library folder (with library.json)")


class DEEPEXPR_AddonPreferences(AddonPreferences):
    bl_idname = ADDON

    python: StringProperty(
        name="Backend Python",
        subtype="FILE_PATH",
        default="",
        description="Interpreter of the DeepExpr backend environment (the project's .venv/bin/python). "
        "Empty: found automatically when the add-on runs from the project checkout",
    )
    device: EnumProperty(
        name="Device",
        items=[
            ("auto", "Auto", "CUDA when there is a GPU, else CPU"),
            ("cpu", "CPU", "Always the CPU"),
            ("cuda", "CUDA", "An NVIDIA GPU"),
        ],
        default="auto",
    )
    threads: IntProperty(
        name="Backend threads",
        min=1,
        max=64,
        default=default_threads(),
        description="CPU threads the backend's networks may use (the backend restarts when it changes). "
        "Fewer threads leave Blender responsive; more make batch retrieval faster on an idle machine",
    )
    log_level: EnumProperty(
        name="Log level", items=[(v, v.title(), "") for v in ("DEBUG", "INFO", "WARNING", "ERROR")], default="WARNING"
    )
    library_folders: CollectionProperty(type=DEEPEXPR_PG_library_folder)
    library_index: IntProperty()

    def draw(self, context):
        layout = self.layout
        col = layout.column()
        col.prop(self, "python")
        if not self.python:
            found = find_project_python()
            col.label(text=f"Automatic: {found}" if found else "Automatic: not found, set it above", icon="INFO")
        col.prop(self, "device")
        col.prop(self, "threads")
        col.prop(self, "log_level")
        box = layout.box()
        box.label(text="Pose library folders")
        for i, item in enumerate(self.library_folders):
            row = box.row(align=True)
            row.prop(item, "path", text="")
            row.operator("deepexpr.library_folder_remove", text="", icon="X").index = i
        box.operator("deepexpr.library_folder_add", icon="ADD")
        row = layout.row()
        row.operator("deepexpr.check_backend", icon="PLUGIN")
        st = status.backend
        layout.label(text=st["text"], icon="ERROR" if st["error"] else "INFO")
        if st["error"]:
            for line in status.wrap(st["error"], 90):
                layout.label(text=line)
        info = st.get("info") or {}
        for name, model in info.get("models", {}).items():
            layout.label(text=f"{name}: {model.get('path', '')}", icon="CHECKMARK" if model.get("loaded") else "X")


classes = (DEEPEXPR_PG_library_folder, DEEPEXPR_AddonPreferences)
register, unregister = bpy.utils.register_classes_factory(classes)
