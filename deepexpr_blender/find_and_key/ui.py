"""The Poses sub-panel (library, target, Find poses; the retrieval weights in a closed sub-panel) and the
Candidates sub-panel, the last of the sidebar so the other sub-panels stay in reach above it: a compact list
(thumbnail, character, label, intensity, full score) that fits the default sidebar width, and the chosen
candidate shown large beside its Key button."""

from __future__ import annotations

import bpy

from ..previews import icon
from ..sidebar import View3DSubPanel


def candidate_text(index: int, c) -> str:
    """One line per candidate: "1. Pip: joy 80% · 0.2134" (character, label, intensity, full score)."""
    strength = f" {c.intensity:.0%}" if c.intensity >= 0 else ""
    return f"{index + 1}. {c.character.title() or c.pose_id}: {c.label or 'unlabelled'}{strength} · {c.score:.4f}"


class DEEPEXPR_UL_candidates(bpy.types.UIList):
    bl_idname = "DEEPEXPR_UL_candidates"

    def draw_item(self, context, layout, data, item, icon_value, active_data, active_propname, index=0):
        layout.label(text=candidate_text(index, item), icon_value=icon(item.thumbnail))


def draw_search(layout, props) -> None:
    col = layout.column(align=True)
    col.prop(props, "library", text="")
    if props.library == "CUSTOM":
        col.prop(props, "library_path", text="")
    col.prop(props, "top_k")
    layout.prop(props, "target")
    layout.operator("deepexpr.find_poses", icon="VIEWZOOM")


def draw_candidates(layout, props) -> None:
    if not props.candidates:
        layout.label(text="Find poses to see the closest ones here")
        return
    rows = min(len(props.candidates), 4)
    layout.template_list(DEEPEXPR_UL_candidates.bl_idname, "", props, "candidates", props, "candidate_index", rows=rows)
    i = min(max(props.candidate_index, 0), len(props.candidates) - 1)
    chosen = props.candidates[i]
    row = layout.row()
    row.template_icon(icon_value=icon(chosen.thumbnail), scale=4.0)
    side = row.column(align=True)
    side.label(text=f"{chosen.character.title()}: {chosen.label or 'unlabelled'}")
    if chosen.intensity >= 0:
        side.label(text=f"Intensity {chosen.intensity:.0%}")
    side.label(text=f"Score {chosen.score:.4f}")
    side.operator("deepexpr.key_pose", text="Key", icon="KEY_HLT").index = i


class DEEPEXPR_PT_view3d_poses(View3DSubPanel, bpy.types.Panel):
    bl_idname = "DEEPEXPR_PT_view3d_poses"
    bl_label = "Poses"
    bl_order = 1

    def draw(self, context):
        draw_search(self.layout, context.scene.deepexpr)


class DEEPEXPR_PT_view3d_candidates(View3DSubPanel, bpy.types.Panel):
    bl_idname = "DEEPEXPR_PT_view3d_candidates"
    bl_label = "Candidates"
    bl_order = 100  # last: the list grows, the other sub-panels stay in reach above it

    def draw(self, context):
        draw_candidates(self.layout, context.scene.deepexpr)


class DEEPEXPR_PT_view3d_weights(bpy.types.Panel):
    bl_idname = "DEEPEXPR_PT_view3d_weights"
    bl_label = "Retrieval weights"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "DeepExpr"
    bl_parent_id = DEEPEXPR_PT_view3d_poses.bl_idname
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        col = self.layout.column(align=True)
        col.prop(context.scene.deepexpr, "alpha")
        col.prop(context.scene.deepexpr, "beta")
        col.prop(context.scene.deepexpr, "gamma")


classes = (DEEPEXPR_UL_candidates, DEEPEXPR_PT_view3d_poses, DEEPEXPR_PT_view3d_weights, DEEPEXPR_PT_view3d_candidates)
