"""The Characters and libraries sub-panel."""

from __future__ import annotations

import bpy

from .. import toon
from ..sidebar import View3DSubPanel


class DEEPEXPR_PT_view3d_characters(View3DSubPanel, bpy.types.Panel):
    bl_idname = "DEEPEXPR_PT_view3d_characters"
    bl_label = "Characters and libraries"
    bl_options = {"DEFAULT_CLOSED"}
    bl_order = 2

    def draw(self, context):
        col = self.layout.column(align=True)
        for spec in toon.CHARACTERS:
            col.operator(
                "deepexpr.add_character", text=f"Add {spec.name}", icon="OUTLINER_OB_ARMATURE"
            ).character = spec.name
        self.layout.operator("deepexpr.review_rig_poses", text="Build library from rig...", icon="ASSET_MANAGER")


classes = (DEEPEXPR_PT_view3d_characters,)
