"""The Blender APIs that moved between the versions we support (4.2 LTS, 4.5 LTS, 5.0), in one place.

Every other module calls these helpers instead of the moved API, so supporting a new Blender touches this
file only. What moved:

- **Actions**: 4.4 added slots and layered actions (F-curves live in a *channelbag* per slot, reached with
  ``bpy_extras.anim_utils.action_get_channelbag_for_slot``); 5.0 removed the legacy ``Action.fcurves``.
  4.2 has only ``Action.fcurves``.
- **Sequencer**: 4.4 renamed ``SequenceEditor.sequences``/``sequences_all`` to ``strips``/``strips_all``;
  5.0 removed the old names.
- **Bone selection**: on ``PoseBone.select`` in 5.0, on ``Bone.select`` before.
"""

from __future__ import annotations

import bpy


def action_fcurves(id_data) -> list:
    """The F-curves that animate ``id_data`` through its action (its own slot's channelbag on 4.4+)."""
    ad = getattr(id_data, "animation_data", None)
    if ad is None or ad.action is None:
        return []
    return list(_fcurves_for(ad.action, getattr(ad, "action_slot", None)))


def _fcurves_for(action, slot):
    try:
        from bpy_extras.anim_utils import action_get_channelbag_for_slot
    except ImportError:  # 4.2, 4.3: no slots
        return action.fcurves
    if slot is None:
        return getattr(action, "fcurves", [])  # 4.4/4.5 legacy proxy; none in 5.0 without a slot
    bag = action_get_channelbag_for_slot(action, slot)
    return bag.fcurves if bag else []


def all_action_fcurves(action) -> list:
    """Every F-curve of ``action``, whatever slot it belongs to."""
    layers = getattr(action, "layers", None)
    if layers is None:  # 4.2, 4.3
        return list(action.fcurves)
    curves = []
    for layer in layers:
        for strip in layer.strips:
            for bag in getattr(strip, "channelbags", []):
                curves.extend(bag.fcurves)
    if not curves and "fcurves" in action.bl_rna.properties:  # 4.4/4.5 legacy action never layered
        curves = list(action.fcurves)
    return curves


def action_slot_state(id_data) -> tuple:
    """(action, slot) of ``id_data``'s animation (slot None before 4.4), to give back with ``set_action``."""
    ad = getattr(id_data, "animation_data", None)
    if ad is None or ad.action is None:
        return None, None
    return ad.action, getattr(ad, "action_slot", None)


def set_action(id_data, action, slot=None) -> None:
    ad = id_data.animation_data or id_data.animation_data_create()
    ad.action = action
    if slot is not None and hasattr(ad, "action_slot"):
        ad.action_slot = slot


def apply_pose_from_action(obj, action, frame: float) -> None:
    """Pose every bone of the armature ``obj`` from ``action`` at ``frame`` (the selection is ignored and kept)."""
    # apply_pose_from_action only poses the selected bones when some are selected: pose them all.
    bones = obj.pose.bones if "select" in bpy.types.PoseBone.bl_rna.properties else obj.data.bones
    selected = [b for b in bones if b.select]
    for b in selected:
        b.select = False
    try:
        obj.pose.apply_pose_from_action(action, evaluation_time=frame)
    finally:
        for b in selected:
            b.select = True


def strips(sed):
    """The sequence editor's top-level strips (``strips`` from 4.4, ``sequences`` before)."""
    return sed.strips if hasattr(sed, "strips") else sed.sequences


def strips_all(sed):
    """Every strip, meta strips' contents included."""
    return sed.strips_all if hasattr(sed, "strips_all") else sed.sequences_all


def clear_keys(id_data, paths: set[str], first: float, last: float) -> int:
    """Delete the keyframes of ``id_data``'s F-curves on ``paths`` within frames [first, last]; returns how many."""
    removed = 0
    for fc in action_fcurves(id_data):
        if fc.data_path not in paths:
            continue
        points = [kp for kp in fc.keyframe_points if first - 1e-3 <= kp.co.x <= last + 1e-3]
        for kp in reversed(points):
            fc.keyframe_points.remove(kp, fast=True)
        if points:
            fc.update()
        removed += len(points)
    return removed
