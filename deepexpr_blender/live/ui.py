"""The Live and Sparse keys sub-panels (3D View)."""

from __future__ import annotations

import bpy

from ..previews import icon
from ..sidebar import View3DSubPanel
from . import workflow


def draw_live(layout, scene) -> None:
    lp = scene.deepexpr_live
    running = workflow.session(scene) is not None
    col = layout.column(align=True)
    col.enabled = not running
    col.prop(lp, "source", expand=True)
    col.prop(lp, "webcam_index" if lp.source == "WEBCAM" else "video")
    layout.prop(scene.deepexpr, "target")
    row = layout.row(align=True)
    if running:
        row.operator("deepexpr.live_stop", text="Stop", icon="PAUSE")
        row.operator(
            "deepexpr.live_record",
            text="Stop recording" if lp.recording else "Record",
            icon="REC",
            depress=lp.recording,
        )
    else:
        row.operator("deepexpr.live", text="Live", icon="PLAY")
    sub = layout.column(align=True)
    sub.prop(lp, "min_hold")
    sub.prop(lp, "hysteresis")
    sub.prop(lp, "blend")
    if lp.error:
        layout.label(text=lp.error[:120], icon="ERROR")
    elif lp.status:
        layout.label(text=lp.status[:120], icon="REC" if lp.recording else "INFO")
    if running:
        layout.label(text=f"{lp.rate:.0f} results/s, {lp.latency:.0f} ms to the pose, keys: {lp.keys_recorded}")
    img = bpy.data.images.get(workflow.LIVE_IMAGE)
    if img is not None and img.preview is not None:
        layout.template_icon(icon_value=img.preview.icon_id, scale=8)
    if lp.candidates:
        grid = layout.grid_flow(row_major=True, columns=3, even_columns=True, align=True)
        for c in lp.candidates:
            box = grid.box()
            box.template_icon(icon_value=icon(c.thumbnail), scale=3)
            box.label(text=c.label or c.pose_id, icon="CHECKMARK" if c.pose_id == lp.pose_id else "BLANK1")


def draw_sparse(layout, scene) -> None:
    lp = scene.deepexpr_live
    col = layout.column(align=True)
    col.prop(lp, "sparse_source", expand=True)
    if lp.sparse_source == "VIDEO":
        col.prop(lp, "sparse_video", text="")
    col.prop(lp, "density")
    col.prop(lp, "breakdowns")
    layout.operator("deepexpr.sparse_keys", icon="KEYFRAME")
    if lp.sparse_report:
        for line in _wrap(lp.sparse_report, 60):
            layout.label(text=line)


def _wrap(text: str, width: int) -> list[str]:
    from ..status import wrap

    return wrap(text, width)


class DEEPEXPR_PT_view3d_live(View3DSubPanel, bpy.types.Panel):
    bl_idname = "DEEPEXPR_PT_view3d_live"
    bl_label = "Live"
    bl_options = {"DEFAULT_CLOSED"}
    bl_order = 5  # after the other workflows, before the Candidates (last): every header stays in reach

    def draw(self, context):
        draw_live(self.layout, context.scene)


class DEEPEXPR_PT_view3d_sparse(View3DSubPanel, bpy.types.Panel):
    bl_idname = "DEEPEXPR_PT_view3d_sparse"
    bl_label = "Sparse keys"
    bl_options = {"DEFAULT_CLOSED"}
    bl_order = 6

    def draw(self, context):
        draw_sparse(self.layout, context.scene)


classes = (DEEPEXPR_PT_view3d_live, DEEPEXPR_PT_view3d_sparse)
