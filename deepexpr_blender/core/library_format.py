"""Character pose libraries: the on-disk format, validation and writing (stdlib only).

A library is a folder::

    library.json
    thumbs/<id>.png

``library.json``::

    {"format": "deepexpr-library", "version": 1, "name": "...", "source": "...",
     "feature_names": [...],                      # names of the geometric features, in order
     "entries": [{"id": "pip-joy-000",
                  "label": "joy" | null,           # one of the 7 canonical expressions, when known
                  "thumbnail": "thumbs/pip-joy-000.png",
                  "pose": {"type": ..., ...},      # see "Pose kinds"
                  "geometry": [floats] | null,     # geometric features of the pose (backend.geometry)
                  "landmarks": [[x, y], ...] | null}]}   # named landmarks in thumbnail pixels

Pose kinds: a pose is a JSON object whose ``"type"`` names its kind. This core checks only that; each kind's
fields are defined and checked by its module in the add-on's ``poses/`` package (``shape_keys``,
``armature_action``, ``image``, ...), so adding a kind does not touch the shared core.

Shared by the add-on (which writes libraries from a user's rig) and the backend (which loads and embeds them).
Loading validates everything first and fails with ``LibraryError`` naming the entry: nothing half-loaded.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

from .vocabulary import LABELS

FORMAT = "deepexpr-library"
VERSION = 1
POSE_TYPE_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,63}")


class LibraryError(ValueError):
    """A library that does not validate; the message names the library and the entry."""


def _fail(root: str, where: str, what: str) -> LibraryError:
    return LibraryError(f"library {root}: {where}: {what}")


def entry_error(root: str, index: int, entry: dict, what: str) -> LibraryError:
    """The error for entry ``index`` of a library, named by its id (for kind-specific checks done elsewhere)."""
    return _fail(root, f"entry {index} ({entry.get('id')!r})", what)


def _check_pose(root: str, where: str, pose: Any) -> None:
    """Generic checks only: a pose is an object whose "type" names its kind. What each kind needs is checked by
    the add-on's pose kinds (``deepexpr_blender/poses``), which the backend does not need."""
    kind = pose.get("type") if isinstance(pose, dict) else None
    if not isinstance(kind, str) or not POSE_TYPE_PATTERN.fullmatch(kind):
        raise _fail(
            root,
            where,
            f"unknown pose type {kind if isinstance(pose, dict) else pose!r}: a pose is an object whose 'type' "
            "names its kind (lowercase letters, digits, '_')",
        )


def path_problem(root: str, rel: Any, real_root: str | None = None) -> str | None:
    """What is wrong with a file path a library entry names (a thumbnail, an image pose), or None: it must be
    relative and stay inside the library folder once resolved (``..`` and symbolic links included). Checked
    before the file's existence, so an error never tells whether a file outside the library exists."""
    if not isinstance(rel, str) or not rel:
        return "must be a non-empty path relative to the library folder"
    if "\x00" in rel:
        return "holds a NUL character"
    if os.path.isabs(rel) or os.path.splitdrive(rel)[0] or rel.startswith(("/", "\\")):
        return f"{rel!r} is absolute: paths in a library are relative to its folder"
    real_root = real_root or os.path.realpath(root)
    real = os.path.realpath(os.path.join(real_root, rel))
    if real != real_root and not real.startswith(real_root.rstrip(os.sep) + os.sep):
        return f"{rel!r} leads outside the library folder"
    return None


def validate(data: Any, root: str) -> dict:
    """Check a parsed library.json against the files under ``root``; returns it unchanged when valid."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise _fail(root, "library.json", f"not a {FORMAT} file")
    if data.get("version") != VERSION:
        raise _fail(root, "library.json", f"version {data.get('version')!r} is not supported (expected {VERSION})")
    entries = data.get("entries")
    if not isinstance(entries, list) or not entries:
        raise _fail(root, "library.json", "'entries' must be a non-empty list")
    n_feat = len(data.get("feature_names") or [])
    seen = set()
    real_root = os.path.realpath(root)
    for i, e in enumerate(entries):
        where = f"entry {i}"
        if not isinstance(e, dict) or not isinstance(e.get("id"), str) or not e["id"]:
            raise _fail(root, where, "needs a non-empty string 'id'")
        where = f"entry {i} ({e['id']!r})"
        if e["id"] in seen:
            raise _fail(root, where, "duplicate id")
        seen.add(e["id"])
        if e.get("label") is not None and e["label"] not in LABELS:
            raise _fail(root, where, f"label {e['label']!r} is not one of {', '.join(LABELS)}")
        thumb = e.get("thumbnail")
        bad = path_problem(root, thumb, real_root)
        if bad:
            raise _fail(root, where, f"thumbnail {bad}")
        if not os.path.isfile(os.path.join(root, thumb)):
            raise _fail(root, where, f"thumbnail missing: {thumb!r}")
        _check_pose(root, where, e.get("pose"))
        if "path" in e["pose"]:
            bad = path_problem(root, e["pose"]["path"], real_root)
            if bad:
                raise _fail(root, where, f"pose path {bad}")
        geo = e.get("geometry")
        if geo is not None and (
            not isinstance(geo, list) or len(geo) != n_feat or not all(isinstance(v, (int, float)) for v in geo)
        ):
            raise _fail(root, where, f"geometry must be null or {n_feat} numbers")
    return data


def load(root: str) -> dict:
    """Read and validate ``root/library.json``."""
    path = os.path.join(root, "library.json")
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise _fail(root, "library.json", "not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _fail(root, "library.json", f"bad JSON: {exc}") from None
    return validate(data, root)


def write(root: str, name: str, source: str, entries: list[dict], feature_names: list[str]) -> str:
    """Validate and write ``root/library.json`` atomically; returns its path."""
    data = {
        "format": FORMAT,
        "version": VERSION,
        "name": name,
        "source": source,
        "feature_names": list(feature_names),
        "entries": entries,
    }
    validate(data, root)
    path = os.path.join(root, "library.json")
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1)
    os.replace(tmp, path)
    return path
