"""Add-on preferences: the backend interpreter, device, library folders, log level, and a backend check."""

from __future__ import annotations

from bpy.props import CollectionProperty, EnumProperty, IntProperty, StringProperty
from bpy.types import AddonPreferences, PropertyGroup

from .client import find_project_python
from .ops import runtime


class DEEPEXPR_PG_library_folder(PropertyGroup):
    path: StringProperty(name="Folder", subtype="DIR_PATH", description="A pose library folder (with library.json)")


class DEEPEXPR_AddonPreferences(AddonPreferences):
    bl_idname = __package__

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
        st = runtime.status
        layout.label(text=st["text"], icon="ERROR" if st["error"] else "INFO")
        if st["error"]:
            for line in _wrap(st["error"], 90):
                layout.label(text=line)


def _wrap(text: str, width: int) -> list[str]:
    words, lines, cur = text.split(), [], ""
    for w in words:
        if len(cur) + len(w) + 1 > width:
            lines.append(cur)
            cur = w
        else:
            cur = f"{cur} {w}".strip()
    return lines + ([cur] if cur else [])


classes = (DEEPEXPR_PG_library_folder, DEEPEXPR_AddonPreferences)
