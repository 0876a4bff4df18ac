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

from ..core import library_format as fmt
from ..errors import KeyingError, PoseError, RigError
from . import armature, image_swap, shape_keys
from .base import PoseKind

# The registry: order matters where several kinds find poses in the same object (the first that finds wins).
KINDS: tuple[PoseKind, ...] = (
    shape_keys.KIND,
    armature.KIND,
    image_swap.KIND,
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


def find_poses(obj) -> list[dict]:
    """The poses found in ``obj`` by the first kind that finds some; ``RigError`` saying why when none does."""
    kinds = kinds_finding_in(obj)
    if not kinds:
        raise RigError(f"{obj.name} is a {obj.type.lower()}: pick a mesh with shape keys or an armature")
    errors = []
    for kind in kinds:
        try:
            return kind.find(obj)
        except RigError as err:
            errors.append(str(err))
    raise RigError("; ".join(errors))


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
