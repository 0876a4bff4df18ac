"""Write a pose library from poses found in a rig or an image folder (``poses`` finds them): each entry's
thumbnail is made by the pose's kind, everything goes into a temporary folder first and is moved into place
at the end (nothing half written), and the rig is given back as it was."""

from __future__ import annotations

import os
import re
import shutil

from .. import compat, poses
from ..core import library_format as fmt


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "pose"


def build_library(out: str, found: list[dict], rig=None, name: str = "", size: int = 256) -> str:
    """Write a library folder at ``out`` from found poses (``{"pose", "label", "name"}``); thumbnails rendered
    from ``rig`` (posed in turn, then restored) or made by the kind (image poses). Returns the library.json path."""
    staging = out.rstrip("/\\") + ".partial"
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(os.path.join(staging, "thumbs"))
    entries = []
    kinds = {poses.kind_of(p["pose"]).type: poses.kind_of(p["pose"]) for p in found}
    saved = [_save(kind, rig) for kind in kinds.values()] if rig is not None else []
    try:
        for i, p in enumerate(found):
            eid = f"{i:04d}-{_slug(p['name'])}"
            pose, thumb = poses.kind_of(p["pose"]).store(dict(p["pose"]), rig, staging, eid, size)
            entry = {"id": eid, "label": p.get("label"), "thumbnail": thumb, "pose": pose}
            entries.append({**entry, "geometry": None, "landmarks": None})
    finally:
        for kind, state in reversed(saved):
            _restore(kind, rig, state)
    data = {
        "format": fmt.FORMAT,
        "version": fmt.VERSION,
        "name": name or os.path.basename(out.rstrip("/\\")),
        "source": "deepexpr_blender.library_from_rig",
        "feature_names": [],
        "entries": entries,
    }
    poses.validate_library(data, staging)
    path = fmt.write(staging, data["name"], data["source"], entries, [])
    shutil.rmtree(out, ignore_errors=True)
    os.replace(staging, out)
    return os.path.join(out, os.path.basename(path))


def _save(kind, rig) -> tuple:
    """The rig's pose and action for ``kind``; the action is detached while thumbnails render (it would
    override the pose being shown) and given back afterwards."""
    animated = kind.animated_id(rig)
    action, slot = compat.action_slot_state(animated)
    if action is not None:
        animated.animation_data.action = None
    return kind, (kind.snapshot(rig), action, slot)


def _restore(kind, rig, state) -> None:
    pose_state, action, slot = state
    if action is not None:
        compat.set_action(kind.animated_id(rig), action, slot)
    kind.restore(rig, pose_state)
