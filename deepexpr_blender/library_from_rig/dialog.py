"""Build library from rig, with a look first: a dialog listing the poses found in the character (from its VRM
table, ARKit / FACS / VALID / Weboji keys, keys named after expressions, pose markers and pose assets, at
several intensities, and its neutral), each editable (include, label, intensity), before anything is built.

Confirming calls ``deepexpr.build_library`` with the edited poses, so building (its staging folder, its
refusal to replace a library unless asked, its progress) stays in one operator.
"""

from __future__ import annotations

import json
import os

import bpy
from bpy.props import BoolProperty, CollectionProperty, EnumProperty, FloatProperty, IntProperty, StringProperty
from bpy.types import PropertyGroup, UIList

from .. import poses
from ..core.vocabulary import LABELS
from ..operator_base import USER_ERRORS, ReportingOperator
from .ops import library_folder

LABEL_ITEMS = [("NONE", "(none)", "No expression label: the pose is kept, but not scored by its label")] + [
    (lab, lab.title(), f"The pose shows {lab}") for lab in LABELS
]


class DEEPEXPR_PG_rig_pose(PropertyGroup):
    include: BoolProperty(name="Include", default=True, description="Put this pose in the library")
    label: EnumProperty(name="Label", items=LABEL_ITEMS, description="The expression this pose shows")
    intensity: FloatProperty(
        name="Intensity", min=0.0, max=1.0, default=1.0, subtype="FACTOR", description="Strength of the expression"
    )
    scalable: BoolProperty(default=False, description="The intensity can be changed (shape keys, armature poses)")
    found_json: StringProperty(description="The found pose, as JSON")


class DEEPEXPR_UL_rig_poses(UIList):
    bl_idname = "DEEPEXPR_UL_rig_poses"

    def draw_item(self, context, layout, data, item, icon, active_data, active_propname, index):
        row = layout.row(align=True)
        row.prop(item, "include", text="")
        sub = row.row(align=True)
        sub.active = item.include
        sub.label(text=item.name)
        sub.prop(item, "label", text="")
        col = sub.row(align=True)
        col.enabled = item.scalable
        col.prop(item, "intensity", text="")


class DEEPEXPR_OT_review_rig_poses(ReportingOperator, bpy.types.Operator):
    bl_idname = "deepexpr.review_rig_poses"
    bl_label = "Build library from rig"
    bl_description = (
        "List the poses found in the active character (expressions from its keys or VRM table, pose markers, "
        "pose assets) to check and edit them, then build a pose library with face-on thumbnails"
    )
    bl_options = {"REGISTER", "INTERNAL"}

    items: CollectionProperty(type=DEEPEXPR_PG_rig_pose)
    active: IntProperty(default=0)
    animation: BoolProperty(
        name="Keyed frames as poses",
        default=False,
        description="Also take every keyed frame of the character's actions for a pose (an imported animation "
        "is not a set of poses: tick this only for frames you keyed as poses)",
    )
    vrm: StringProperty(
        name="VRM file",
        subtype="FILE_PATH",
        description="The .vrm this character was imported from: its expression table is read from the file",
    )
    overwrite: BoolProperty(name="Replace the existing library", default=False)
    summary: StringProperty()
    out: StringProperty()

    @classmethod
    def poll(cls, context):
        obj = context.active_object
        return obj is not None and bool(poses.kinds_finding_in(obj))

    def _find(self, context) -> None:
        from ..poses.vrm_expressions import PROPERTY
        from ..rigs.character import character_root

        obj = context.active_object
        root = character_root(obj)
        if self.vrm:
            root[PROPERTY] = bpy.path.abspath(self.vrm)
        elif isinstance(root.get(PROPERTY), str):
            self.vrm = root[PROPERTY]
        found = poses.find_poses(obj, animation=self.animation)
        self.items.clear()
        for p in found:
            it = self.items.add()
            it.name = p["name"]
            it.label = p["label"] if p.get("label") in LABELS else "NONE"
            it.intensity = 1.0 if p.get("intensity") is None else float(p["intensity"])
            it.scalable = p.get("intensity") is not None and p["label"] != "neutral"
            it.found_json = json.dumps(p)
        kinds = sorted({poses.kind_named(p["kind"]).title for p in found})
        report = next((p["report"] for p in found if p.get("report")), {})
        missing = report.get("missing") or []
        self.summary = f"{len(found)} poses: {', '.join(kinds)}" + (
            f" (not on this rig: {', '.join(missing)})" if missing else ""
        )
        self.out = library_folder(obj)

    def invoke(self, context, event):
        try:
            self._find(context)
        except USER_ERRORS as err:
            return self.fail(err)
        return context.window_manager.invoke_props_dialog(self, width=560, confirm_text="Build")

    def draw(self, context):
        layout = self.layout
        layout.label(text=self.summary, icon="INFO")
        layout.template_list("DEEPEXPR_UL_rig_poses", "", self, "items", self, "active", rows=12)
        row = layout.row()
        row.prop(self, "animation")
        row.prop(self, "vrm")
        layout.label(text=f"Library: {self.out}", icon="FILE_FOLDER")
        if os.path.exists(os.path.join(self.out, "library.json")):
            box = layout.box()
            box.label(text="A library of this character exists there.", icon="ERROR")
            box.prop(self, "overwrite")
        layout.label(text="Change the options above and run again to list the poses anew.")

    def chosen(self) -> list[dict]:
        """The included poses with the user's labels and intensities."""
        out = []
        for it in self.items:
            if not it.include:
                continue
            p = json.loads(it.found_json)
            p.pop("report", None)
            p["label"] = None if it.label == "NONE" else it.label
            if p.get("expression") in LABELS or p.get("expression") is None:
                p["expression"] = p["label"]
            if it.scalable and abs(it.intensity - (p.get("intensity") or 1.0)) > 1e-6:
                kind = poses.kind_named(p["pose"]["type"])
                p["pose"] = kind.scaled(p.get("base", p["pose"]), it.intensity)
                p["intensity"] = round(float(it.intensity), 4)
            out.append(p)
        return out

    def execute(self, context):
        if not len(self.items):  # run without the dialog (scripts, redo): find the poses now
            try:
                self._find(context)
            except USER_ERRORS as err:
                return self.fail(err)
        chosen = self.chosen()
        if not chosen:
            return self.fail(ValueError("No pose is included: tick at least one"))
        if os.path.exists(os.path.join(self.out, "library.json")) and not self.overwrite:
            return self.fail(
                FileExistsError(f"{self.out} already holds this character's library: tick 'Replace' to rebuild it")
            )
        res = bpy.ops.deepexpr.build_library(
            "EXEC_DEFAULT", poses_json=json.dumps(chosen), overwrite=self.overwrite, animation=self.animation
        )
        return {"FINISHED"} if "RUNNING_MODAL" in res else res  # the build goes on as its own modal job


classes = (DEEPEXPR_PG_rig_pose, DEEPEXPR_UL_rig_poses, DEEPEXPR_OT_review_rig_poses)
