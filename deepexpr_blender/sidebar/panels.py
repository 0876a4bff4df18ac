"""The two top-level DeepExpr panels, the bases of the feature rooms' sub-panels, and the DeepExpr menu."""

from __future__ import annotations

import bpy

from .. import status

VIEW3D_PARENT = "DEEPEXPR_PT_view3d_main"
SEQUENCER_PARENT = "DEEPEXPR_PT_sequencer_main"


def draw_status(layout, props) -> None:
    """The backend's status line (with its refresh button) and the scene's current job."""
    st = status.backend
    row = layout.row()
    row.label(text=st["text"], icon="ERROR" if st["error"] else "PLUGIN")
    row.operator("deepexpr.check_backend", text="", icon="FILE_REFRESH")
    if st["error"]:
        layout.label(text=st["error"][:120], icon="INFO")
    if props.status:
        layout.label(text=props.status, icon="TIME" if props.busy else "CHECKMARK")
    if props.busy:
        layout.progress(factor=props.progress, text="Working (Esc cancels)")


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
        draw_status(self.layout, context.scene.deepexpr)


class DEEPEXPR_PT_sequencer_main(_Sequencer, bpy.types.Panel):
    bl_idname = SEQUENCER_PARENT
    bl_label = "DeepExpr"

    def draw(self, context):
        draw_status(self.layout, context.scene.deepexpr)


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
