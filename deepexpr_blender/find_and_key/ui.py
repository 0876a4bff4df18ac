"""The Poses sub-panel: library, weights, Find poses, target, and the candidates with their Key buttons."""

from __future__ import annotations

import bpy

from ..previews import icon
from ..sidebar import View3DSubPanel


def draw_candidates(layout, props) -> None:
    col = layout.column(align=True)
    col.prop(props, "library")
    if props.library == "CUSTOM":
        col.prop(props, "library_path", text="")
    row = col.row(align=True)
    row.prop(props, "top_k")
    sub = layout.column(align=True)
    sub.prop(props, "alpha")
    sub.prop(props, "beta")
    sub.prop(props, "gamma")
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


class DEEPEXPR_PT_view3d_poses(View3DSubPanel, bpy.types.Panel):
    bl_idname = "DEEPEXPR_PT_view3d_poses"
    bl_label = "Poses"

    def draw(self, context):
        draw_candidates(self.layout, context.scene.deepexpr)


classes = (DEEPEXPR_PT_view3d_poses,)
