"""The Batch sub-panels (3D View and Sequencer)."""

from __future__ import annotations

import bpy

from ..sidebar import SequencerSubPanel, View3DSubPanel


def draw_batch(layout, props) -> None:
    col = layout.column(align=True)
    col.prop(props, "batch_input")
    col.prop(props, "batch_step")
    col.prop(props, "batch_min_hold")
    col.prop(props, "batch_hysteresis")
    layout.operator("deepexpr.batch_retrieve", icon="RENDER_ANIMATION")
    if props.batch_report:
        layout.label(text=props.batch_report[:120])


class _Batch:
    bl_label = "Batch"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        draw_batch(self.layout, context.scene.deepexpr)


class DEEPEXPR_PT_view3d_batch(_Batch, View3DSubPanel, bpy.types.Panel):
    bl_idname = "DEEPEXPR_PT_view3d_batch"


class DEEPEXPR_PT_sequencer_batch(_Batch, SequencerSubPanel, bpy.types.Panel):
    bl_idname = "DEEPEXPR_PT_sequencer_batch"


classes = (DEEPEXPR_PT_view3d_batch, DEEPEXPR_PT_sequencer_batch)
