"""Keying a library pose on the target at a frame: shape-key values, an armature pose, or an image swap."""

from __future__ import annotations

import os

import bpy

from ..rig_library import apply_pose

SWAP_PREFIX = "DeepExpr swap: "


class KeyingError(ValueError):
    """The target cannot take this pose; the message says what to do."""


def key_pose(obj, pose: dict, frame: int, library_root: str = "") -> list[str]:
    """Key ``pose`` on ``obj`` at ``frame``; returns the keyed channels."""
    if obj is None:
        raise KeyingError("No target: pick the character to key in the DeepExpr panel")
    kind = pose.get("type")
    if kind == "shape_keys":
        return _key_shape_keys(obj, pose, frame)
    if kind == "armature_action":
        if obj.type != "ARMATURE":
            raise KeyingError(f"{obj.name} is not an armature; this pose belongs to {pose.get('target')}")
        apply_pose(pose, obj)
        keyed = []
        animated = _animated_bones(bpy.data.actions[pose["action"]])
        for pb in obj.pose.bones:
            if animated and pb.name not in animated:
                continue  # key only the bones the pose moves: the rest of the rig keeps its animation
            for path in (
                "location",
                "rotation_quaternion"
                if pb.rotation_mode == "QUATERNION"
                else "rotation_euler"
                if pb.rotation_mode != "AXIS_ANGLE"
                else "rotation_axis_angle",
                "scale",
            ):
                pb.keyframe_insert(path, frame=frame, group=pb.name)
                keyed.append(f'pose.bones["{pb.name}"].{path}')
        return keyed
    if kind == "image":
        return _key_image_swap(obj, pose, frame, library_root)
    raise KeyingError(f"unknown pose type {kind!r}")


def _key_shape_keys(obj, pose: dict, frame: int) -> list[str]:
    keys = obj.data.shape_keys.key_blocks if obj.type == "MESH" and obj.data.shape_keys else None
    if keys is None:
        raise KeyingError(f"{obj.name} has no shape keys; pick a mesh with the pose's shape keys as the target")
    names = [n for n in pose["values"] if n in keys]
    if not names:
        raise KeyingError(f"{obj.name} has none of this pose's shape keys ({', '.join(list(pose['values'])[:4])}...)")
    keyed = []
    # A pose is the whole face: shape keys it does not list go to 0, so the previous pose does not linger.
    for kb in keys[1:]:
        kb.value = float(pose["values"].get(kb.name, 0.0))
        kb.keyframe_insert("value", frame=frame)
        keyed.append(f'key_blocks["{kb.name}"].value')
    return keyed


def _key_image_swap(obj, pose: dict, frame: int, library_root: str) -> list[str]:
    """2D characters: the target is an Empty holding one image-empty child per pose image; keying shows the
    chosen image and hides the others (constant interpolation), as cut-out animators swap drawings."""
    path = pose["path"] if os.path.isabs(pose["path"]) else os.path.join(library_root, pose["path"])
    if not os.path.isfile(path):
        raise KeyingError(f"pose image missing: {path}")
    if obj.type != "EMPTY":
        raise KeyingError("For image poses the target must be an Empty (the 2D character's holder)")
    name = SWAP_PREFIX + os.path.basename(path)
    child = next((c for c in obj.children if c.get("deepexpr_image") == path), None)
    if child is None:
        child = bpy.data.objects.new(name, None)
        child.empty_display_type = "IMAGE"
        child.data = bpy.data.images.load(path, check_existing=True)
        child["deepexpr_image"] = path
        child.parent = obj
        for coll in obj.users_collection:
            coll.objects.link(child)
        # A new drawing is hidden before its first key, not shown over the earlier frames.
        start = min(bpy.context.scene.frame_start, frame - 1)
        child.hide_viewport = child.hide_render = True
        for prop in ("hide_viewport", "hide_render"):
            child.keyframe_insert(prop, frame=start)
    keyed = []
    for c in obj.children:
        if "deepexpr_image" not in c:
            continue
        hidden = c is not child
        c.hide_viewport = c.hide_render = hidden
        for prop in ("hide_viewport", "hide_render"):
            c.keyframe_insert(prop, frame=frame)
        keyed.append(c.name)
        _constant(c)
    return keyed


def _constant(obj) -> None:
    from bpy_extras.anim_utils import action_get_channelbag_for_slot

    ad = obj.animation_data
    bag = action_get_channelbag_for_slot(ad.action, ad.action_slot) if ad and ad.action else None
    for fc in bag.fcurves if bag else []:
        for kp in fc.keyframe_points:
            kp.interpolation = "CONSTANT"


def _animated_bones(action) -> set[str]:
    """Names of the bones an action animates (any slot)."""
    names = set()
    for layer in getattr(action, "layers", []):
        for strip in layer.strips:
            for bag in getattr(strip, "channelbags", []):
                for fc in bag.fcurves:
                    if fc.data_path.startswith('pose.bones["'):
                        names.add(fc.data_path.split('"')[1])
    return names
