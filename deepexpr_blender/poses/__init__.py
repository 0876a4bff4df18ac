"""Pose kinds, one module each, chosen through the registry below (the idea of glTF-Blender-IO's one file
per extension). The interface every kind implements is ``base.PoseKind``.

Add a pose kind (a rig type, an expression source): write ``poses/<kind>.py`` with a ``PoseKind`` subclass and
its instance ``KIND``, then add ``<kind>.KIND`` to ``KINDS``. Nothing else changes: library validation,
keying, batch keying, "Build library from rig" and thumbnails all go through these functions.

This package imports no ``bpy`` at module level (kinds import it inside their methods), so validation runs in
plain Python. The shared core (``core/``) never imports it: the backend accepts any pose kind, and the add-on
checks the kind-specific fields when it loads or writes a library.
"""

from __future__ import annotations

from ..core import expression_keys as ek
from ..core import library_format as fmt
from ..errors import KeyingError, PoseError, RigError
from . import arkit, armature, au_keys, image_swap, named_keys, shape_keys, vrm_expressions
from .base import PoseKind

# The registry. Expression kinds (``automatic``) are asked in this order and the first that finds poses
# wins (what the artist declared, then a key scheme, then key names); the user's own poses (markers, pose
# assets) are always added.
KINDS: tuple[PoseKind, ...] = (
    shape_keys.KIND,
    armature.KIND,
    image_swap.KIND,
    vrm_expressions.KIND,
    au_keys.KIND,
    arkit.KIND,
    named_keys.KIND,
)


def kind_named(type_name: str) -> PoseKind:
    """The kind whose ``type`` is ``type_name``; ``PoseError`` when no kind of that name is registered."""
    for kind in KINDS:
        if kind.type == type_name:
            return kind
    raise PoseError(f"unknown pose type {type_name!r}; expected one of {', '.join(k.type for k in KINDS)}")


def kind_of(pose: dict) -> PoseKind:
    """The kind of a pose dict."""
    if not isinstance(pose, dict):
        raise PoseError(f"a pose is an object with a 'type', not {pose!r}")
    return kind_named(pose.get("type"))


def kinds_finding_in(obj) -> list[PoseKind]:
    """The kinds that can make poses from ``obj`` (Build library from rig offers these)."""
    return [k for k in KINDS if k.finds_in(obj)]


def find_poses(obj, animation: bool = False, intensities: tuple[float, ...] = ek.DEFAULT_INTENSITIES) -> list[dict]:
    """Every pose "Build library from rig" offers for ``obj``'s character (found-pose dicts, ``base.py``, plus
    ``kind``, ``expression``, ``intensity``, ``source`` and ``base``: the pose at full intensity):

    1. the expressions the rig already has, from the first expression kind that finds some (a VRM table, an
       AU key scheme, ARKit blendshapes, keys named after expressions), each at ``intensities``;
    2. the user's own poses: pose markers and pose assets, and keyed frames only with ``animation`` (an
       imported take is not a set of poses); each labelled one also at the lower ``intensities``;
    3. the rig's own neutral (its rest pose), when nothing above gives one.

    ``RigError`` saying what was looked for when nothing is found."""
    errors: list[str] = []
    found: list[dict] = []
    for kind in KINDS:
        if not getattr(kind, "automatic", False) or not kind.finds_in(obj):
            continue
        try:
            found = [{**p, "kind": kind.type} for p in kind.find(obj, intensities=intensities)]
            break
        except RigError as err:
            errors.append(str(err))
    for kind in (shape_keys.KIND, armature.KIND):
        if kind.finds_in(obj):
            try:
                own = kind.find(obj, animation=animation)
            except RigError as err:
                if not found:
                    errors.append(str(err))
                continue
            for p in own:
                found += _at_intensities({**p, "kind": kind.type, "base": p["pose"]}, kind, intensities)
    if not found:
        raise RigError(
            "; ".join(errors)
            or f"{obj.name} has no expression keys this add-on recognises (VRM table, ARKit, FACS, VALID, Weboji or "
            "keys named after expressions), no pose markers and no pose assets"
        )
    if not any(p["label"] == "neutral" for p in found):
        rest = _rest_pose(obj, found)
        if rest is not None:
            found.insert(0, rest)
    return found


def _at_intensities(p: dict, kind, intensities: tuple[float, ...]) -> list[dict]:
    """A user's labelled pose at each intensity (full first); unlabelled and neutral poses as they are."""
    if p["label"] in (None, "neutral") or not hasattr(kind, "scaled"):
        return [p]
    out = []
    for s in sorted(intensities, reverse=True):
        name = p["name"] if s == 1.0 else f"{p['name']} {round(s * 100)}%"
        out.append({**p, "pose": kind.scaled(p["base"], s) if s != 1.0 else p["base"], "intensity": s, "name": name})
    return out


def _rest_pose(obj, found: list[dict]) -> dict | None:
    """The rig's own neutral (every key at 0 / bones at rest) in the kind of the poses found."""
    shape = [p for p in found if "values" in p["pose"]]
    if shape:
        meshes: dict[str, dict[str, float]] = {}
        for p in shape:
            for m, kv in shape_keys.pose_meshes(p["pose"]).items():
                meshes.setdefault(m, {}).update({k: 0.0 for k in kv})
        target = shape[0]["pose"]["target"]
        pose = {"type": shape[0]["pose"]["type"], "target": target, "values": meshes.get(target, {}), "meshes": meshes}
        kind = shape[0]["kind"]
    else:
        pose = armature.KIND.rest(obj)
        kind = armature.KIND.type
        if pose is None:
            return None
    return {
        "pose": pose,
        "base": pose,
        "label": "neutral",
        "expression": "neutral",
        "intensity": 0.0,
        "name": "neutral (rest)",
        "source": "rest",
        "kind": kind,
    }


def validate_pose(pose: dict, root: str) -> None:
    kind_of(pose).validate(pose, root)


def validate_library(data: dict, root: str) -> dict:
    """The core's envelope checks, then each pose checked by its kind; ``LibraryError`` names the entry."""
    fmt.validate(data, root)
    for i, entry in enumerate(data["entries"]):
        try:
            validate_pose(entry["pose"], root)
        except PoseError as err:
            raise fmt.entry_error(root, i, entry, str(err)) from None
    return data


def load_library(root: str) -> dict:
    """Read ``root/library.json`` and validate it, pose kinds included."""
    return validate_library(fmt.load(root), root)


def check_target(obj, pose: dict, library_root: str = "") -> None:
    """``KeyingError`` (what to do) when ``obj`` cannot take ``pose``."""
    if obj is None:
        raise KeyingError("No target: pick the character to key in the DeepExpr panel")
    try:
        kind = kind_of(pose)
    except PoseError as err:
        raise KeyingError(str(err)) from None
    kind.check_target(obj, pose, library_root)


def can_key(obj) -> bool:
    """Whether any registered kind can key objects like ``obj`` (a Cube without shape keys: no)."""
    return obj is not None and any(k.can_key(obj) for k in KINDS)


def cannot_key_reason(obj) -> str:
    """What to tell the user when no kind can key ``obj``."""
    return (
        f"{obj.name} cannot be keyed: DeepExpr keys the shape keys of a mesh, the bones of an armature, or the "
        "drawings under a 2D character's Empty. Pick your character as the Target"
    )


def check_library_target(obj, entries: list[dict], library_root: str = "") -> None:
    """``KeyingError`` unless ``obj`` can take the poses of a library (checked on one pose of each kind)."""
    if obj is None:
        raise KeyingError("No target: pick the character to key in the DeepExpr panel")
    errors = []
    for entry in {e["pose"].get("type"): e for e in entries}.values():
        try:
            check_target(obj, entry["pose"], library_root)
            return
        except KeyingError as err:
            errors.append(str(err))
    raise KeyingError(f"{obj.name} cannot take this library's poses: " + "; ".join(errors))


def channels_for(obj, pose_list: list[dict]) -> list[tuple]:
    """The (ID, RNA path) channels keying any of ``pose_list`` on ``obj`` would key (no duplicates)."""
    seen, out = set(), []
    for pose in pose_list:
        try:
            kind = kind_of(pose)
        except PoseError:
            continue
        for id_data, path in kind.channels(obj, pose):
            if (id_data.name, type(id_data).__name__, path) not in seen:
                seen.add((id_data.name, type(id_data).__name__, path))
                out.append((id_data, path))
    return out


def key_pose(obj, pose: dict, frame: int, library_root: str = "") -> list[str]:
    """Key ``pose`` on ``obj`` at ``frame``; returns the keyed channels."""
    check_target(obj, pose, library_root)
    return kind_of(pose).key(obj, pose, frame, library_root)


def apply_pose(pose: dict, obj=None) -> None:
    """Set the rig to ``pose`` (no keying). ``obj`` defaults to the pose's target object."""
    import bpy

    kind_of(pose).apply(pose, obj or bpy.data.objects.get(pose.get("target", "")))


__all__ = [
    "KINDS",
    "PoseKind",
    "apply_pose",
    "can_key",
    "cannot_key_reason",
    "channels_for",
    "check_library_target",
    "check_target",
    "find_poses",
    "key_pose",
    "kind_named",
    "kind_of",
    "kinds_finding_in",
    "load_library",
    "validate_library",
    "validate_pose",
]
