"""Armature poses: ``{"type": "armature_action", "target": <armature>, "action": <action name>, "frame": n}``,
optionally ``"weight"`` (0..1: the pose blended from rest, for an expression at a lower intensity); an empty
``action`` is the rig's rest pose (its neutral).

Found in the character's armature: the pose markers of its own action, every pose asset (an action marked as
an asset), and its keyed frames only when the user asks for it (``animation=True``: an imported take is not a
set of poses). Keying keys only the bones the pose's action moves, so the rest of the rig keeps its animation.
Thumbnails frame the head bone (a bone named "head"), else the rig's meshes.
"""

from __future__ import annotations

import numpy as np

from ..core.vocabulary import label_from_name
from ..errors import KeyingError, RigError
from .base import PoseKind, is_number, require
from .shape_keys import keyed_frames


def _rotation_path(pb) -> str:
    if pb.rotation_mode == "QUATERNION":
        return "rotation_quaternion"
    return "rotation_axis_angle" if pb.rotation_mode == "AXIS_ANGLE" else "rotation_euler"


def animated_bones(action) -> set[str]:
    """Names of the bones an action animates (any slot)."""
    from .. import compat

    return {
        fc.data_path.split('"')[1]
        for fc in compat.all_action_fcurves(action)
        if fc.data_path.startswith('pose.bones["')
    }


class ArmaturePose(PoseKind):
    type = "armature_action"
    title = "armature pose"

    def finds_in(self, obj) -> bool:
        return _armature(obj) is not None

    def find(self, obj, animation: bool = False) -> list[dict]:
        import bpy

        from .. import compat

        arm = _armature(obj)
        if arm is None:
            raise RigError(f"{obj.name} is not an armature, nor part of a character with one")
        poses = []
        own = arm.animation_data.action if arm.animation_data else None
        if own is not None:
            for frame, marker in keyed_frames(own, compat.action_fcurves(arm), animation):
                label = label_from_name(marker) if marker else None
                poses.append(
                    {
                        "pose": {"type": self.type, "target": arm.name, "action": own.name, "frame": frame},
                        "label": label,
                        "expression": label,
                        "intensity": None,
                        "name": marker or f"frame {frame:g}",
                        "source": "markers" if marker else "keyed",
                    }
                )
        for act in bpy.data.actions:
            if act.asset_data is not None and act is not own:
                start = float(act.frame_range[0])
                label = label_from_name(act.name)
                poses.append(
                    {
                        "pose": {"type": self.type, "target": arm.name, "action": act.name, "frame": start},
                        "label": label,
                        "expression": label,
                        "intensity": None,
                        "name": act.name,
                        "source": "assets",
                    }
                )
        if not poses:
            raise RigError(
                f"{arm.name} has no pose assets or pose markers"
                + ("" if animation else " (keyed frames are used only when you tick 'Keyed frames as poses')")
            )
        return poses

    def rest(self, obj) -> dict | None:
        """The rig's own neutral: its rest pose."""
        arm = _armature(obj)
        return None if arm is None else {"type": self.type, "target": arm.name, "action": "", "frame": 0.0}

    def scaled(self, pose: dict, intensity: float) -> dict:
        return {**pose, "weight": round(float(intensity) * float(pose.get("weight", 1.0)), 5)}

    def validate(self, pose: dict, root: str) -> None:
        require(
            isinstance(pose.get("target"), str)
            and isinstance(pose.get("action"), str)
            and is_number(pose.get("frame")),
            "armature_action pose needs 'target', 'action' (strings) and 'frame' (number)",
        )
        w = pose.get("weight", 1.0)
        require(is_number(w) and 0 <= w <= 1, "armature_action pose 'weight' must be a number in 0..1")

    def can_key(self, obj) -> bool:
        return obj.type == "ARMATURE"

    def channels(self, obj, pose: dict) -> list[tuple]:
        import bpy

        action = bpy.data.actions.get(pose.get("action", ""))
        if obj.type != "ARMATURE" or action is None:
            return []
        animated = animated_bones(action)
        bones = [pb for pb in obj.pose.bones if not animated or pb.name in animated]
        return [
            (obj, f'pose.bones["{pb.name}"].{p}') for pb in bones for p in ("location", _rotation_path(pb), "scale")
        ]

    def check_target(self, obj, pose: dict, library_root: str = "") -> None:
        import bpy

        super().check_target(obj, pose, library_root)
        if obj.type != "ARMATURE":
            raise KeyingError(f"{obj.name} is not an armature; this pose belongs to {pose.get('target')}")
        if pose["action"] and pose["action"] not in bpy.data.actions:
            raise KeyingError(f"the action {pose['action']!r} of this pose is not in this file: append it first")

    def apply(self, pose: dict, obj) -> None:
        import bpy

        from .. import compat
        from ..rigs.character import blend_from_rest, rest_bones

        if not pose["action"]:
            rest_bones([obj])
            return
        compat.apply_pose_from_action(obj, bpy.data.actions[pose["action"]], pose["frame"])
        if float(pose.get("weight", 1.0)) != 1.0:
            blend_from_rest(obj, float(pose["weight"]))

    def key(self, obj, pose: dict, frame: int, library_root: str = "") -> list[str]:
        import bpy

        self.check_target(obj, pose, library_root)
        self.apply(pose, obj)
        keyed = []
        animated = animated_bones(bpy.data.actions[pose["action"]]) if pose["action"] else set()
        for pb in obj.pose.bones:
            if animated and pb.name not in animated:
                continue  # key only the bones the pose moves: the rest of the rig keeps its animation
            for path in ("location", _rotation_path(pb), "scale"):
                pb.keyframe_insert(path, frame=frame, group=pb.name)
                keyed.append(f'pose.bones["{pb.name}"].{path}')
        return keyed

    def face_points(self, obj) -> np.ndarray:
        from mathutils import Vector

        from .thumbnails import bbox_points

        head = next((b for b in obj.pose.bones if "head" in b.name.lower()), None)
        if head is not None:
            mw = obj.matrix_world
            a, b = mw @ head.head, mw @ head.tail
            length = (b - a).length
            c = (a + b) / 2
            return np.array([c + Vector((dx, 0, dz)) * length for dx in (-0.8, 0.8) for dz in (-0.9, 0.9)])
        children = [c for c in obj.children if c.type == "MESH"]
        if children:
            return np.concatenate([bbox_points(c) for c in children])
        return bbox_points(obj)

    def snapshot(self, rig):
        return {
            b.name: (b.location.copy(), b.rotation_quaternion.copy(), b.rotation_euler.copy(), b.scale.copy())
            for b in rig.pose.bones
        }

    def restore(self, rig, state) -> None:
        for b in rig.pose.bones:
            b.location, b.rotation_quaternion, b.rotation_euler, b.scale = state[b.name]


KIND = ArmaturePose()


def _armature(obj):
    """``obj`` when it is an armature, else the armature at the root of its character (or None)."""
    if obj.type == "ARMATURE":
        return obj
    from ..rigs.character import character_objects

    return next((o for o in character_objects(obj) if o.type == "ARMATURE"), None)
