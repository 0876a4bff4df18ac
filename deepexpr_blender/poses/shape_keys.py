"""Shape-key poses: ``{"type": "shape_keys", "target": <mesh object>, "values": {<shape key>: value}}``, with
``"meshes": {<mesh object>: {<shape key>: value}}`` when the pose spans several meshes of one character (a
face, its brows, teeth and eyes as separate objects: VRM and glTF rigs).

Found on the character's meshes whose shape keys have an action: each **pose marker** of that action (a marker
named after an expression, e.g. "joy" or "Joy_2", labels the pose); each **keyed frame** only when the user
asks for it (``animation=True``: "Use keyed frames as poses" in the dialog), because an imported animation
(a dance, a lip-sync take) is not a set of poses. Keying sets every shape key of each mesh the pose names
(the ones it does not list go to 0: a pose is the whole face).
"""

from __future__ import annotations

from ..core.vocabulary import label_from_name
from ..errors import KeyingError, RigError
from .base import PoseKind, is_number, require


def keyed_frames(action, fcurves, animation: bool = True) -> list[tuple[float, str | None]]:
    """(frame, marker name) for each pose marker of ``action``; else, with ``animation``, (frame, None) for
    each keyed frame."""
    markers = list(getattr(action, "pose_markers", []) or [])
    if markers:
        return sorted((float(m.frame), m.name) for m in markers)
    if not animation:
        return []
    frames = set()
    for fc in fcurves:
        frames.update(round(kp.co.x, 3) for kp in fc.keyframe_points)
    return [(f, None) for f in sorted(frames)]


def pose_meshes(pose: dict) -> dict[str, dict[str, float]]:
    """A pose's values per mesh: ``meshes`` when present, else ``{target: values}``."""
    meshes = pose.get("meshes")
    return meshes if isinstance(meshes, dict) and meshes else {pose["target"]: pose["values"]}


def _character_meshes(obj) -> dict:
    """Name -> mesh object for every mesh of ``obj``'s character (``obj`` itself when it stands alone)."""
    from ..rigs.character import character_objects

    return {o.name: o for o in character_objects(obj) if o.type == "MESH"}


class ShapeKeyPose(PoseKind):
    type = "shape_keys"
    title = "shape-key pose"
    source = "markers"

    def finds_in(self, obj) -> bool:
        return any(o.data.shape_keys is not None for o in _character_meshes(obj).values())

    def find(self, obj, animation: bool = False) -> list[dict]:
        import bpy

        from .. import compat

        meshes = [
            o for o in _character_meshes(obj).values() if o.data.shape_keys and len(o.data.shape_keys.key_blocks) > 1
        ]
        if not meshes:
            raise RigError(f"{obj.name} has no shape keys to make poses from")
        scene = bpy.context.scene
        keep = scene.frame_current
        poses = []
        try:
            for mesh in meshes:
                key = mesh.data.shape_keys
                action = key.animation_data.action if key.animation_data else None
                if action is None:
                    continue
                for frame, marker in keyed_frames(action, compat.action_fcurves(key), animation):
                    scene.frame_set(int(frame), subframe=frame - int(frame))
                    values = {kb.name: round(float(kb.value), 5) for kb in key.key_blocks[1:]}
                    label = label_from_name(marker) if marker else None
                    poses.append(
                        {
                            "pose": {"type": self.type, "target": mesh.name, "values": values},
                            "label": label,
                            "expression": label,
                            "intensity": None,
                            "name": marker or f"{mesh.name} frame {frame:g}",
                            "source": "markers" if marker else "keyed",
                        }
                    )
        finally:
            scene.frame_set(keep)
        if not poses:
            raise RigError(
                f"{obj.name}'s shape keys have no pose markers"
                + ("" if animation else " (keyed frames are used only when you tick 'Keyed frames as poses')")
                + ": key one pose per frame and add a pose marker named after its expression"
            )
        return poses

    def validate(self, pose: dict, root: str) -> None:
        vals = pose.get("values")
        require(
            isinstance(pose.get("target"), str)
            and isinstance(vals, dict)
            and all(isinstance(k, str) and is_number(v) for k, v in vals.items()),
            f"{self.type} pose needs 'target' (string) and 'values' ({{name: number}})",
        )
        meshes = pose.get("meshes")
        require(
            meshes is None
            or (
                isinstance(meshes, dict)
                and all(
                    isinstance(m, str) and isinstance(kv, dict) and all(is_number(v) for v in kv.values())
                    for m, kv in meshes.items()
                )
            ),
            f"{self.type} pose 'meshes' must be {{mesh: {{name: number}}}}",
        )

    def targets(self, obj, pose: dict) -> dict:
        """Mesh object -> the values it takes, for the meshes of ``obj``'s character the pose names (``obj`` itself
        stands in for a single-mesh pose whose target has another name: a renamed or duplicated character)."""
        by_name = _character_meshes(obj)
        wanted = pose_meshes(pose)
        found = {by_name[m]: kv for m, kv in wanted.items() if m in by_name and by_name[m].data.shape_keys}
        if not found and len(wanted) == 1 and obj.type == "MESH" and obj.data.shape_keys:
            found = {obj: next(iter(wanted.values()))}
        return found

    def can_key(self, obj) -> bool:
        return obj.type == "MESH" and obj.data.shape_keys is not None and len(obj.data.shape_keys.key_blocks) > 1

    def channels(self, obj, pose: dict) -> list[tuple]:
        if not self.can_key(obj):
            return []
        key = obj.data.shape_keys
        return [(key, f'key_blocks["{kb.name}"].value') for kb in key.key_blocks[1:]]

    def check_target(self, obj, pose: dict, library_root: str = "") -> None:
        super().check_target(obj, pose, library_root)
        found = self.targets(obj, pose)
        if not found:
            names = ", ".join(pose_meshes(pose))
            raise KeyingError(
                f"{obj.name} is not (part of) the character this pose belongs to: it needs the shape keys of {names}"
            )
        if not any(n in o.data.shape_keys.key_blocks for o, kv in found.items() for n in kv):
            some = ", ".join(list(next(iter(found.values())))[:4])
            raise KeyingError(f"{obj.name} has none of this pose's shape keys ({some}...)")

    def apply(self, pose: dict, obj) -> None:
        for mesh, values in self.targets(obj, pose).items():
            keys = mesh.data.shape_keys.key_blocks
            for name, value in values.items():
                if name in keys:
                    keys[name].value = value

    def key(self, obj, pose: dict, frame: int, library_root: str = "") -> list[str]:
        self.check_target(obj, pose, library_root)
        keyed = []
        # A pose is the whole face: shape keys it does not list go to 0, so the previous pose does not linger.
        for mesh, values in self.targets(obj, pose).items():
            for kb in mesh.data.shape_keys.key_blocks[1:]:
                kb.value = float(values.get(kb.name, 0.0))
                kb.keyframe_insert("value", frame=frame)
                keyed.append(f'key_blocks["{kb.name}"].value')
        return keyed

    def scaled(self, pose: dict, intensity: float) -> dict:
        """The pose at ``intensity`` (every value times it: shape keys are linear from rest)."""
        out = dict(pose)
        out["values"] = {k: round(v * intensity, 5) for k, v in pose["values"].items()}
        if isinstance(pose.get("meshes"), dict):
            out["meshes"] = {m: {k: round(v * intensity, 5) for k, v in kv.items()} for m, kv in pose["meshes"].items()}
        return out

    def face_points(self, obj):
        """The world-space vertices the shape keys move (the face), else the bounding box."""
        import numpy as np

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
