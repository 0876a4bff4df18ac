"""Panels (3D View sidebar and Sequencer sidebar, "DeepExpr" tab) and the batch menu."""

from __future__ import annotations

import bpy

from ..ops import runtime
from .previews import icon


def _status(layout, props) -> None:
    st = runtime.status
    row = layout.row()
    row.label(text=st["text"], icon="ERROR" if st["error"] else "PLUGIN")
    row.operator("deepexpr.check_backend", text="", icon="FILE_REFRESH")
    if st["error"]:
        layout.label(text=st["error"][:120], icon="INFO")
    if props.status:
        layout.label(text=props.status, icon="TIME" if props.busy else "CHECKMARK")
    if props.busy:
        layout.progress(factor=props.progress, text="Working (Esc cancels)")


def _capture(layout, props) -> None:
    col = layout.column(align=True)
    col.prop(props, "source", expand=True)
    if props.source == "WEBCAM":
        col.prop(props, "webcam_index")
    elif props.source == "IMAGE":
        col.prop(props, "image_path", text="")
    else:
        col.label(text="Active movie strip, frame under the playhead")
    layout.operator("deepexpr.capture", icon="OUTLINER_OB_CAMERA")
    if props.preview_path:
        layout.template_icon(icon_value=icon(props.preview_path), scale=8)
    if props.expression:
        layout.label(text=f"Expression: {props.expression} ({props.confidence:.0%})", icon="MONKEY")


def _candidates(layout, props) -> None:
    col = layout.column(align=True)
    col.prop(props, "library")
    if props.library == "CUSTOM":
        col.prop(props, "library_path", text="")
    row = col.row(align=True)
    row.prop(props, "top_k")
    sub = layout.column(align=True)
    sub.prop(props, "alpha")
    sub.prop(props, "beta")
    layout.operator("deepexpr.find_poses", icon="VIEWZOOM")
    layout.prop(props, "target")
    if not props.candidates:
        return
    grid = layout.grid_flow(row_major=True, columns=3, even_columns=True, align=True)
    for i, c in enumerate(props.candidates):
        box = grid.box()
        box.template_icon(icon_value=icon(c.thumbnail), scale=4)
        box.label(text=f"{i + 1}. {c.label or c.pose_id}")
        box.label(text=f"score {c.score:.3f}")
        op = box.operator("deepexpr.key_pose", text="Key", icon="KEY_HLT")
        op.index = i


class DEEPEXPR_PT_main(bpy.types.Panel):
    bl_idname = "DEEPEXPR_PT_main"
    bl_label = "DeepExpr"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "DeepExpr"

    def draw(self, context):
        props = context.scene.deepexpr
        _status(self.layout, props)
        _capture(self.layout.box(), props)
        _candidates(self.layout.box(), props)


class DEEPEXPR_PT_rig(bpy.types.Panel):
    bl_idname = "DEEPEXPR_PT_rig"
    bl_label = "Characters and libraries"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "DeepExpr"
    bl_parent_id = "DEEPEXPR_PT_main"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        col = self.layout.column(align=True)
        for name in ("pip", "mira", "bruno", "zee"):
            col.operator("deepexpr.add_character", text=f"Add {name}", icon="OUTLINER_OB_ARMATURE").character = name
        self.layout.operator("deepexpr.build_library", icon="ASSET_MANAGER")


def _transition(layout, props) -> None:
    col = layout.column(align=True)
    col.prop(props, "seq_source")
    col.prop(props, "seq_mode")
    if props.seq_mode == "EXPRESSION":
        col.prop(props, "seq_expression")
    elif props.seq_mode == "IMAGE":
        col.prop(props, "seq_target_image")
    else:
        col.prop(props, "seq_keyframes")
    col.prop(props, "seq_frames")
    col.prop(props, "seq_easing")
    col.prop(props, "seq_method")
    layout.operator("deepexpr.generate_transition", icon="SEQUENCE")


def _batch(layout, props) -> None:
    col = layout.column(align=True)
    col.prop(props, "batch_input")
    col.prop(props, "batch_step")
    col.prop(props, "batch_min_hold")
    col.prop(props, "batch_hysteresis")
    layout.operator("deepexpr.batch_retrieve", icon="RENDER_ANIMATION")
    if props.batch_report:
        layout.label(text=props.batch_report[:120])


class DEEPEXPR_PT_sequence(bpy.types.Panel):
    bl_idname = "DEEPEXPR_PT_sequence"
    bl_label = "Transitions and batch"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "DeepExpr"
    bl_parent_id = "DEEPEXPR_PT_main"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        props = context.scene.deepexpr
        _transition(self.layout.box(), props)
        _batch(self.layout.box(), props)


class DEEPEXPR_PT_sequencer(bpy.types.Panel):
    bl_idname = "DEEPEXPR_PT_sequencer"
    bl_label = "DeepExpr"
    bl_space_type = "SEQUENCE_EDITOR"
    bl_region_type = "UI"
    bl_category = "DeepExpr"

    def draw(self, context):
        props = context.scene.deepexpr
        _status(self.layout, props)
        _capture(self.layout.box(), props)
        _transition(self.layout.box(), props)
        _batch(self.layout.box(), props)


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

classes = (DEEPEXPR_PT_main, DEEPEXPR_PT_rig, DEEPEXPR_PT_sequence, DEEPEXPR_PT_sequencer, DEEPEXPR_MT_batch)
