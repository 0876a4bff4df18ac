"""Shape-key poses: ``{"type": "shape_keys", "target": <mesh object>, "values": {<shape key>: value}}``.

Found in a mesh whose shape keys have an action: each pose marker of that action (a marker named after an
expression, e.g. "joy" or "Joy_2", labels the pose), else each keyed frame. Keying sets every shape key (the
ones a pose does not list go to 0: a pose is the whole face). Thumbnails frame the vertices the shape keys move.
"""

from __future__ import annotations

import numpy as np

from ..core.vocabulary import label_from_name
from ..errors import KeyingError, RigError
from .base import PoseKind, is_number, require


def keyed_frames(action, fcurves) -> list[tuple[float, str | None]]:
    """(frame, marker name) for each pose marker of ``action``, else (frame, None) for each keyed frame."""
    markers = list(getattr(action, "pose_markers", []) or [])
    if markers:
        return sorted((float(m.frame), m.name) for m in markers)
    frames = set()
    for fc in fcurves:
        frames.update(round(kp.co.x, 3) for kp in fc.keyframe_points)
    return [(f, None) for f in sorted(frames)]


class ShapeKeyPose(PoseKind):
    type = "shape_keys"
    title = "shape-key pose"

    def finds_in(self, obj) -> bool:
        return obj.type == "MESH" and obj.data.shape_keys is not None

    def find(self, obj) -> list[dict]:
        import bpy

        from .. import compat

        key = obj.data.shape_keys if obj.type == "MESH" else None
        if key is None or len(key.key_blocks) < 2:
            raise RigError(f"{obj.name} has no shape keys to make poses from")
        action = key.animation_data.action if key.animation_data else None
        if action is None:
            raise RigError(f"{obj.name}'s shape keys have no action: key some poses (or add pose markers) first")
        scene = bpy.context.scene
        keep = scene.frame_current
        poses = []
        try:
            for frame, marker in keyed_frames(action, compat.action_fcurves(key)):
                scene.frame_set(int(frame), subframe=frame - int(frame))
                values = {kb.name: round(float(kb.value), 5) for kb in key.key_blocks[1:]}
                poses.append(
                    {
                        "pose": {"type": self.type, "target": obj.name, "values": values},
                        "label": label_from_name(marker) if marker else None,
                        "name": marker or f"frame {frame:g}",
                    }
                )
        finally:
            scene.frame_set(keep)
        return poses

    def validate(self, pose: dict, root: str) -> None:
        vals = pose.get("values")
        require(
            isinstance(pose.get("target"), str)
            and isinstance(vals, dict)
            and all(isinstance(k, str) and is_number(v) for k, v in vals.items()),
            "shape_keys pose needs 'target' (string) and 'values' ({name: number})",
        )

    def can_key(self, obj) -> bool:
        return obj.type == "MESH" and obj.data.shape_keys is not None and len(obj.data.shape_keys.key_blocks) > 1

    def channels(self, obj, pose: dict) -> list[tuple]:
        if not self.can_key(obj):
            return []
        key = obj.data.shape_keys
        return [(key, f'key_blocks["{kb.name}"].value') for kb in key.key_blocks[1:]]

    def check_target(self, obj, pose: dict, library_root: str = "") -> None:
        super().check_target(obj, pose, library_root)
        keys = obj.data.shape_keys.key_blocks if obj.type == "MESH" and obj.data.shape_keys else None
        if keys is None:
            raise KeyingError(f"{obj.name} has no shape keys; pick a mesh with the pose's shape keys as the target")
        if not any(n in keys for n in pose["values"]):
            raise KeyingError(
                f"{obj.name} has none of this pose's shape keys ({', '.join(list(pose['values'])[:4])}...)"
            )

    def apply(self, pose: dict, obj) -> None:
        keys = obj.data.shape_keys.key_blocks
        for name, value in pose["values"].items():
            if name in keys:
                keys[name].value = value

    def key(self, obj, pose: dict, frame: int, library_root: str = "") -> list[str]:
        self.check_target(obj, pose, library_root)
        keyed = []
        # A pose is the whole face: shape keys it does not list go to 0, so the previous pose does not linger.
        for kb in obj.data.shape_keys.key_blocks[1:]:
            kb.value = float(pose["values"].get(kb.name, 0.0))
            kb.keyframe_insert("value", frame=frame)
            keyed.append(f'key_blocks["{kb.name}"].value')
        return keyed

    def face_points(self, obj) -> np.ndarray:
        """The world-space vertices the shape keys move (the face), else the bounding box."""
        if obj.type == "MESH" and obj.data.shape_keys and len(obj.data.shape_keys.key_blocks) > 1:
            kb = obj.data.shape_keys.key_blocks
            n = len(obj.data.vertices)
            base = np.empty(n * 3, np.float32)
            kb[0].data.foreach_get("co", base)
            moved = np.zeros(n, bool)
            for k in kb[1:]:
                co = np.empty(n * 3, np.float32)
                k.data.foreach_get("co", co)
                moved |= np.abs(co - base).reshape(-1, 3).max(axis=1) > 1e-5
            if moved.sum() >= 3:
                pts = base.reshape(-1, 3)[moved]
                m = np.array(obj.matrix_world)
                return pts @ m[:3, :3].T + m[:3, 3]
        return super().face_points(obj)

    def animated_id(self, rig):
        return rig.data.shape_keys

    def snapshot(self, rig):
        return {kb.name: kb.value for kb in rig.data.shape_keys.key_blocks} if rig.data.shape_keys else {}

    def restore(self, rig, state) -> None:
        for name, v in state.items():
            rig.data.shape_keys.key_blocks[name].value = v


KIND = ShapeKeyPose()
