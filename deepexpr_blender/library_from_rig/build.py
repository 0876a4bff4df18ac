"""Write a pose library from poses found in a rig or an image folder (``poses`` finds them).

- **Rig poses** (shape keys on one or several meshes, the expression kinds, armature poses) go through the
  rig builder (``rigs.builder.build_rig_library``): the whole character at rest, face-on thumbnails framed on
  the vertices the poses move, landmarks found from the keys' motion, a face box per entry, labels,
  intensities and the rig's own neutral.
- **Image poses** (a FERG-DB layout folder of drawings): a resized copy of each image as its thumbnail, the
  label from the folder's name; the backend finds the face and landmarks on them when it indexes the library
  (``backend.character_face``, where dlib sees no face).

Everything is written into ``<out>.partial`` and moved into place at the end (nothing half written); an
existing library is replaced only with ``overwrite=True`` and kept when the build fails; the rig is given
back as it was.
"""

from __future__ import annotations

import os
import re
import shutil

from .. import poses
from ..core import library_format as fmt
from ..errors import RigError

RIG_FIELDS = ("values", "action")  # a pose with one of these is shown on a rig


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "pose"


def is_rig_pose(pose: dict) -> bool:
    return any(k in pose for k in RIG_FIELDS)


def landmark_roles(rig, found: list[dict]) -> dict | None:
    """The landmark roles of the expression kind the poses came from (None: the builder's own default)."""
    for p in found:
        kind = poses.kind_named(p["pose"]["type"])
        if hasattr(kind, "roles"):
            return kind.roles(rig)
    return None


def build_from_rig(
    out: str, found: list[dict], rig, name: str = "", size: int = 256, overwrite: bool = False, progress=None
) -> dict:
    """The rig builder over found poses; returns its report (``path``, ``entries``, ``warnings``, ...)."""
    from ..rigs import builder

    return builder.drive(iter_build_from_rig(out, found, rig, name, size, overwrite), progress)


def iter_build_from_rig(out: str, found: list[dict], rig, name: str = "", size: int = 256, overwrite: bool = False):
    """``build_from_rig`` one thumbnail at a time (yields (done, total); returns the report)."""
    from ..rigs import builder

    for p in found:
        poses.validate_pose(p["pose"], "")
    rig_poses = [
        builder.RigPose(
            name=p["name"],
            pose=p["pose"],
            label=p.get("label"),
            expression=p.get("expression", p.get("label")),
            intensity=p.get("intensity"),
            source=p.get("source", p.get("kind", "")),
        )
        for p in found
    ]
    cfg = builder.RigLibraryConfig(overwrite=overwrite)
    cfg.thumbnail.size = size
    roles = landmark_roles(rig, found)
    return (yield from builder.iter_build_rig_library(rig, out, rig_poses, cfg, name=name, roles=roles))


def build_library(
    out: str, found: list[dict], rig=None, name: str = "", size: int = 256, overwrite: bool = False, progress=None
) -> str:
    """Write a library folder at ``out`` from found poses (``{"pose", "label", "name", ...}``): rig poses with
    the rig builder, image poses as copies. Returns the library.json path; ``FileExistsError`` when ``out``
    holds a library and ``overwrite`` is not set."""
    from ..rigs import builder

    return builder.drive(iter_build_library(out, found, rig, name, size, overwrite), progress)


def iter_build_library(out: str, found: list[dict], rig=None, name: str = "", size: int = 256, overwrite: bool = False):
    """``build_library`` one thumbnail at a time: yields (done, total), returns the library.json path. The
    checks run at the first step (before any thumbnail)."""
    out = out.rstrip("/\\")
    if os.path.exists(os.path.join(out, "library.json")) and not overwrite:
        raise FileExistsError(f"{out} already holds a library: choose another folder or allow replacing it")
    if not found:
        raise RigError("no poses to build a library from")
    if rig is not None and all(is_rig_pose(p["pose"]) for p in found):
        return (yield from iter_build_from_rig(out, found, rig, name, size, overwrite))["path"]
    if any(is_rig_pose(p["pose"]) for p in found):
        raise RigError("rig poses need the rig they belong to: select it and build again")
    yield 0, len(found)  # image libraries are copies: one step
    return build_image_library(out, found, name, size)


def build_image_library(out: str, found: list[dict], name: str = "", size: int = 256, progress=None) -> str:
    """Image poses: each image's resized copy as its thumbnail, the image itself under ``images/``."""
    from ..rigs.builder import replace_library

    staging = out + ".partial"
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(os.path.join(staging, "thumbs"))
    entries = []
    try:
        for i, p in enumerate(found):
            eid = f"{i:04d}-{_slug(p['name'])}"
            pose, thumb = poses.kind_of(p["pose"]).store(dict(p["pose"]), None, staging, eid, size)
            entries.append(
                {
                    "id": eid,
                    "label": p.get("label"),
                    "thumbnail": thumb,
                    "pose": pose,
                    "geometry": None,
                    "landmarks": None,
                    "face_box": None,
                    "expression": p.get("expression", p.get("label")),
                    "intensity": p.get("intensity"),
                    "source": p.get("source", "images"),
                    "character": p.get("character"),
                }
            )
            if progress is not None:
                progress(i + 1, len(found))
        data = {
            "format": fmt.FORMAT,
            "version": fmt.VERSION,
            "name": name or os.path.basename(out),
            "source": "deepexpr_blender.library_from_rig",
            "feature_names": [],
            "entries": entries,
        }
        poses.validate_library(data, staging)
        path = fmt.write(staging, data["name"], data["source"], entries, [])
        replace_library(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return os.path.join(out, os.path.basename(path))
