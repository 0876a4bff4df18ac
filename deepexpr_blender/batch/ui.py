"""The Batch sub-panels (3D View and Sequencer)."""

from __future__ import annotations

import bpy

from .. import sequencer
from ..sidebar import SequencerSubPanel, View3DSubPanel
from ..sidebar.panels import wrapped


def draw_batch(layout, context, in_sequencer: bool) -> None:
    props = context.scene.deepexpr
    col = layout.column(align=True)
    strip = sequencer.active_movie_strip(context.scene) if in_sequencer else None
    if strip is not None:
        col.label(text=f"Input: the movie strip {strip.name}", icon="SEQUENCE")
    else:
        col.prop(props, "batch_input")
    col.prop(props, "batch_step")
    col.prop(props, "batch_min_hold")
    col.prop(props, "batch_hysteresis")
    layout.prop(props, "target")
    layout.operator("deepexpr.batch_retrieve", icon="RENDER_ANIMATION")
    if props.batch_report:
        wrapped(layout, context, props.batch_report, "INFO")


class _Batch:
    bl_label = "Batch"
    bl_options = {"DEFAULT_CLOSED"}
    bl_order = 4


class DEEPEXPR_PT_view3d_batch(_Batch, View3DSubPanel, bpy.types.Panel):
    bl_idname = "DEEPEXPR_PT_view3d_batch"

    def draw(self, context):
        draw_batch(self.layout, context, in_sequencer=False)


class DEEPEXPR_PT_sequencer_batch(_Batch, SequencerSubPanel, bpy.types.Panel):
    bl_idname = "DEEPEXPR_PT_sequencer_batch"

    def draw(self, context):
        draw_batch(self.layout, context, in_sequencer=True)


classes = (DEEPEXPR_PT_view3d_batch, DEEPEXPR_PT_sequencer_batch)
