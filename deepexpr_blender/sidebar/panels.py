"""The two top-level DeepExpr panels, the bases of the feature rooms' sub-panels, and the DeepExpr menu."""

from __future__ import annotations

import bpy

from .. import status

VIEW3D_PARENT = "DEEPEXPR_PT_view3d_main"
SEQUENCER_PARENT = "DEEPEXPR_PT_sequencer_main"


def line_width(context) -> int:
    """About how many characters fit on one label line of the region being drawn."""
    region = getattr(context, "region", None)
    scale = (context.preferences.system.ui_scale if context.preferences else 0.0) or 1.0
    width = region.width if region is not None and region.width > 1 else 300
    return max(20, int((width - 70 * scale) / (7.0 * scale)))


def wrapped(layout, context, text: str, icon: str = "NONE") -> None:
    """``text`` as labels that fit the region (the first line with ``icon``)."""
    col = layout.column(align=True)
    for i, line in enumerate(status.wrap(text, line_width(context))):
        col.label(text=line, icon=icon if i == 0 else "BLANK1" if icon != "NONE" else "NONE")


def draw_status(layout, context) -> None:
    """The backend's status (with its refresh button), the scene's job and its progress, the last error."""
    props = context.scene.deepexpr
    st = status.backend
    row = layout.row()
    row.label(text=st["text"], icon="ERROR" if st["error"] else "PLUGIN")
    row.operator("deepexpr.check_backend", text="", icon="FILE_REFRESH")
    if st["error"]:
        wrapped(layout.box(), context, st["error"], "INFO")
    if props.busy:
        wrapped(layout, context, props.status, "TIME")
        if props.progress_known:
            tail = "  (Esc cancels)" if props.cancellable else ""
            layout.progress(factor=props.progress, text=f"{props.progress:.0%}{tail}")
        elif props.cancellable:
            layout.label(text="Esc cancels", icon="CANCEL")
    elif props.error:
        wrapped(layout.box(), context, props.error, "ERROR")
    elif props.status:
        wrapped(layout, context, props.status, "CHECKMARK" if props.status_kind == "OK" else "INFO")


class _View3D:
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "DeepExpr"


class _Sequencer:
    bl_space_type = "SEQUENCE_EDITOR"
    bl_region_type = "UI"
    bl_category = "DeepExpr"


class View3DSubPanel(_View3D):
    """Base of a feature's sub-panel in the 3D View's DeepExpr tab."""

    bl_parent_id = VIEW3D_PARENT


class SequencerSubPanel(_Sequencer):
    """Base of a feature's sub-panel in the Sequencer's DeepExpr tab."""

    bl_parent_id = SEQUENCER_PARENT


class DEEPEXPR_PT_view3d_main(_View3D, bpy.types.Panel):
    bl_idname = VIEW3D_PARENT
    bl_label = "DeepExpr"

    def draw(self, context):
        draw_status(self.layout, context)


class DEEPEXPR_PT_sequencer_main(_Sequencer, bpy.types.Panel):
    bl_idname = SEQUENCER_PARENT
    bl_label = "DeepExpr"

    def draw(self, context):
        draw_status(self.layout, context)


class DEEPEXPR_MT_batch(bpy.types.Menu):
    bl_idname = "DEEPEXPR_MT_batch"
    bl_label = "DeepExpr"

    def draw(self, context):
        layout = self.layout
        layout.operator("deepexpr.batch_retrieve", icon="RENDER_ANIMATION")
        layout.operator("deepexpr.generate_transition", icon="SEQUENCE")
        layout.operator("deepexpr.find_poses", icon="VIEWZOOM")


def menu_entry(self, context):
    self.layout.menu(DEEPEXPR_MT_batch.bl_idname)


MENUS = ("VIEW3D_MT_object_animation", "SEQUENCER_MT_strip")

classes = (DEEPEXPR_PT_view3d_main, DEEPEXPR_PT_sequencer_main, DEEPEXPR_MT_batch)
