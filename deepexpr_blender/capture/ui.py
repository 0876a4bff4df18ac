"""The Capture sub-panels (3D View and Sequencer)."""

from __future__ import annotations

import bpy

from ..previews import icon
from ..sidebar import SequencerSubPanel, View3DSubPanel
from .neutral import draw_neutral


def draw_capture(layout, props) -> None:
    col = layout.column(align=True)
    col.row(align=True).prop(props, "source", expand=True)
    if props.source == "WEBCAM":
        col.prop(props, "webcam_index")
    elif props.source == "IMAGE":
        col.prop(props, "image_path", text="")
    else:
        col.label(text="Active movie strip, frame under the playhead")
    layout.operator("deepexpr.capture", icon="OUTLINER_OB_CAMERA")
    draw_neutral(layout, props)
    if props.preview_path:
        layout.template_icon(icon_value=icon(props.preview_path), scale=6)
    if props.expression:
        layout.label(text=f"Expression: {props.expression} ({props.confidence:.0%})", icon="MONKEY")


class _Capture:
    bl_label = "Capture"
    bl_order = 0

    def draw(self, context):
        draw_capture(self.layout, context.scene.deepexpr)


class DEEPEXPR_PT_view3d_capture(_Capture, View3DSubPanel, bpy.types.Panel):
    bl_idname = "DEEPEXPR_PT_view3d_capture"


class DEEPEXPR_PT_sequencer_capture(_Capture, SequencerSubPanel, bpy.types.Panel):
    bl_idname = "DEEPEXPR_PT_sequencer_capture"


classes = (DEEPEXPR_PT_view3d_capture, DEEPEXPR_PT_sequencer_capture)
