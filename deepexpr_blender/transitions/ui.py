"""The Transition sub-panels (3D View and Sequencer)."""

from __future__ import annotations

import bpy

from ..sidebar import SequencerSubPanel, View3DSubPanel


def draw_transition(layout, props) -> None:
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


class _Transition:
    bl_label = "Transition"
    bl_options = {"DEFAULT_CLOSED"}
    bl_order = 3

    def draw(self, context):
        draw_transition(self.layout, context.scene.deepexpr)


class DEEPEXPR_PT_view3d_transition(_Transition, View3DSubPanel, bpy.types.Panel):
    bl_idname = "DEEPEXPR_PT_view3d_transition"


class DEEPEXPR_PT_sequencer_transition(_Transition, SequencerSubPanel, bpy.types.Panel):
    bl_idname = "DEEPEXPR_PT_sequencer_transition"


classes = (DEEPEXPR_PT_view3d_transition, DEEPEXPR_PT_sequencer_transition)
