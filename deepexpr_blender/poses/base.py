"""The pose-kind interface: everything the add-on does with one kind of pose, in one class.

A *pose* is the ``"pose"`` object of a library entry (``core/library_format.py``): a JSON object whose
``"type"`` names its kind. A kind knows how to

- **find** its poses in a rig (``finds_in`` / ``find``: "Build library from rig"),
- **validate** its pose data (plain Python: no ``bpy``, so plain pytest can test it),
- **check** that a target can take a pose before anything is keyed (``can_key``, ``check_target``),
- name the **channels** it keys (a batch replaces the keys in its frame range on them),
- **apply** a pose to a rig and **key** it at a frame,
- **frame** a thumbnail on the rig's face (``face_points``) and **store** an entry's thumbnail and files,
- **snapshot** and **restore** the rig while thumbnails render.

Add a kind: write one module with a ``PoseKind`` subclass and its single instance ``KIND``, and add that
one line to ``KINDS`` in ``poses/__init__.py``. ``bpy`` is imported inside methods, never at module level.

A *found pose* (what ``find`` returns) is a dict: ``{"pose": {...}, "label": <one of the seven labels or None>,
"name": <shown in lists and used for the entry id>}``; sources may add more keys (e.g. ``"intensity"``).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ..errors import KeyingError, PoseError, RigError


class PoseKind:
    """Base class of a pose kind; subclasses set ``type`` and ``title`` and override what applies to them."""

    type: str = ""  # the pose's "type" in library.json
    title: str = ""  # in messages: "shape-key pose"

    # ------------------------------------------------------------------ finding poses in a rig
    def finds_in(self, obj) -> bool:
        """Whether ``find`` can make poses from this object (decides which kinds "Build library from rig" asks)."""
        return False

    def find(self, obj) -> list[dict]:
        """The poses this kind finds in ``obj`` (found-pose dicts, see the module doc); ``RigError`` if none."""
        raise RigError(f"{obj.name}: {self.title}s are not made from a rig")

    # ------------------------------------------------------------------ validation (plain Python)
    def validate(self, pose: dict, root: str) -> None:
        """Raise ``PoseError`` naming what is wrong with ``pose`` (a library at ``root``)."""

    # ------------------------------------------------------------------ applying and keying (bpy)
    def can_key(self, obj) -> bool:
        """Whether objects like ``obj`` can take poses of this kind at all (a cheap check before a batch)."""
        return False

    def channels(self, obj, pose: dict) -> list[tuple]:
        """The (ID, RNA path) pairs ``key`` keys on ``obj`` for ``pose``: what a batch replaces in its range."""
        return []

    def check_target(self, obj, pose: dict, library_root: str = "") -> None:
        """Raise ``KeyingError`` (what to do) when ``obj`` cannot take ``pose``; nothing is changed."""
        if obj is None:
            raise KeyingError("No target: pick the character to key in the DeepExpr panel")

    def apply(self, pose: dict, obj) -> None:
        """Set ``obj`` to ``pose`` (no keys)."""
        raise PoseError(f"a {self.title} is not applied to a rig")

    def key(self, obj, pose: dict, frame: int, library_root: str = "") -> list[str]:
        """Key ``pose`` on ``obj`` at ``frame``; returns the keyed channels (RNA paths or names)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ thumbnails
    def face_points(self, obj) -> np.ndarray:
        """World-space points (n, 3) a thumbnail camera frames: by default the object's bounding box."""
        from .thumbnails import bbox_points

        return bbox_points(obj)

    def store(self, pose: dict, rig, staging: str, entry_id: str, size: int) -> tuple[dict, str]:
        """Write the entry's thumbnail (and any file the pose needs) under the library folder ``staging``;
        returns (the pose as stored, the thumbnail's path relative to the library). Default: pose the rig and
        render it, framed on ``face_points``."""
        from .thumbnails import render_thumbnail

        rel = f"thumbs/{entry_id}.png"
        self.apply(pose, rig)
        render_thumbnail(rig, self.face_points(rig), os.path.join(staging, rel), size)
        return dict(pose), rel

    def animated_id(self, rig):
        """The ID whose action drives this kind's channels (detached while thumbnails render)."""
        return rig

    def snapshot(self, rig) -> Any:
        """Whatever ``restore`` needs to put the rig back as it was."""
        return None

    def restore(self, rig, state: Any) -> None:
        pass


def require(cond: bool, message: str) -> None:
    """Validation helper: raise ``PoseError(message)`` unless ``cond``."""
    if not cond:
        raise PoseError(message)


def is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)
