"""A labelled pose library from a character's own expressions, in one call (bpy).

    poses, report = rig_poses(objs, vrm_path=None)       # VRM table, else AU scheme, else named keys
    build_rig_library(face_object, out_dir, poses)       # face-on thumbnails + landmarks + face boxes

Each entry keeps the ``shape_keys`` pose of the library format (``target``: the mesh with the most keys,
``values``: every key any pose of the library sets, zeros included, so applying one pose clears the last)
and adds ``meshes`` (the same for every mesh of the character), ``expression`` (label or extra name),
``intensity``, ``source`` (facs / arkit / valid / weboji / deepexpr / named / vrm), ``face_box``
([left, top, right, bottom] thumbnail pixels of the face region) and ``landmarks`` (the named points, when
every one was found). The library is written into ``<out>.partial`` and moved into place at the end; an
existing library is replaced only with ``overwrite=True``.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import time
from dataclasses import dataclass, field

import numpy as np

from ..core import expression_keys as ek
from ..core import library_format as fmt
from ..core import vrm as vrm_core
from ..core.vocabulary import LABELS
from .character import RestState, character_objects, evaluated, set_shape_keys, shape_key_meshes
from .framing import FaceFrame, FaceRegion, ThumbnailConfig, ThumbnailScene, face_region, frame_face
from .landmarks3d import find_landmarks, project_landmarks

log = logging.getLogger(__name__)


@dataclass
class RigLibraryConfig:
    intensities: tuple[float, ...] = ek.DEFAULT_INTENSITIES  # each expression at these strengths
    thumbnail: ThumbnailConfig = field(default_factory=ThumbnailConfig)
    include_extras: bool = True  # keep VRM's relaxed / fun (label None) in the library
    overwrite: bool = False  # replace an existing library at ``out``


def vrm_poses(objs: list, table: vrm_core.VrmTable, intensities=ek.DEFAULT_INTENSITIES) -> list[ek.ComposedPose]:
    """A VRM table's expressions as poses on the imported character's objects (Blender may have renamed an
    object ``Face`` to ``Face.001``: the bind goes to the object of that name, else to the one mesh that has
    the shape key)."""
    keys = shape_key_meshes(objs)
    poses = [ek.ComposedPose("neutral", "neutral", "neutral", 0.0, "vrm", {})]
    for e in table.poses():
        if e.expression == "neutral":
            continue
        values: dict[str, dict[str, float]] = {}
        for b in e.binds:
            target = next((o for o in b.objects if b.shape_key in keys.get(o, ())), None)
            if target is None:
                owners = [o for o, ks in keys.items() if b.shape_key in ks and o.split(".")[0] in b.objects]
                owners = owners or [o for o, ks in keys.items() if b.shape_key in ks]
                if len(owners) != 1:
                    raise ValueError(
                        f"VRM expression {e.name!r}: shape key {b.shape_key!r} of {', '.join(b.objects)} is "
                        f"{'on no mesh' if not owners else 'on several meshes'} of the imported character"
                    )
                target = owners[0]
            values.setdefault(target, {})[b.shape_key] = b.weight
        steps = (1.0,) if e.is_binary else intensities
        for s in steps:
            scaled = {m: {k: round(v * s, 4) for k, v in kv.items()} for m, kv in values.items()}
            name = ek.pose_name(_slug(e.expression if e.preset else f"{e.expression}_{e.name}"), s)
            poses.append(ek.ComposedPose(name, e.label, e.expression, s, "vrm", scaled))
    return poses


VRM_ROLES = {"eye_close": ("blink",), "jaw_open": ("aa", "a"), "smile": ("happy", "joy"), "brow_raise": ("surprised",)}


def vrm_roles(objs: list, table: vrm_core.VrmTable) -> dict[str, list[tuple[str, str]]]:
    """Landmark roles from a VRM table's blink, aa, happy and surprised expressions."""
    keys = shape_key_meshes(objs)
    by_name = {(e.preset or e.name.lower()): e for e in table.expressions}
    out: dict[str, list[tuple[str, str]]] = {}
    for role, names in VRM_ROLES.items():
        e = next((by_name[n] for n in names if n in by_name and by_name[n].binds), None)
        if e is not None:
            out[role] = [
                (o, b.shape_key)
                for b in e.binds
                for o in keys
                if b.shape_key in keys[o] and o.split(".")[0] in b.objects
            ]
    return out


def rig_poses(objs: list, vrm_path: str | None = None, cfg: RigLibraryConfig | None = None):
    """(poses, report) for a character: its VRM table when ``vrm_path`` is given, else ``compose_poses``."""
    cfg = cfg or RigLibraryConfig()
    if vrm_path:
        table = vrm_core.read_vrm(vrm_path)
        poses = vrm_poses(objs, table, cfg.intensities)
        present = {p.expression for p in poses}
        report = {
            "scheme": f"vrm {table.version}",
            "roles": vrm_roles(objs, table),
            "missing": [lab for lab in LABELS if lab not in present],
            "expressions": [e.name for e in table.poses()],
        }
    else:
        poses, report = ek.compose_poses(shape_key_meshes(objs), cfg.intensities)
    if not cfg.include_extras:
        poses = [p for p in poses if p.label is not None]
    if len(poses) < 2:
        raise ValueError(
            "the character has no expression keys this builder recognises (VRM table, ARKit, FACS, VALID, "
            "Weboji or keys named after expressions): key some poses on the timeline instead"
        )
    return poses, report


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-").lower() or "pose"


def _face_box(objs: list, region: FaceRegion, frame: FaceFrame) -> list[float]:
    by_name = {o.name: o for o in objs}
    pts = [evaluated(by_name[n])[0][m] for n, m in region.masks.items()]
    px, _ = frame.project(np.concatenate(pts))
    (x0, x1), (y0, y1) = np.percentile(px[:, 0], [2, 98]), np.percentile(px[:, 1], [2, 98])
    return [round(float(v), 1) for v in (x0, y0, x1, y1)]


def build_rig_library(
    face_object,
    out: str,
    poses: list[ek.ComposedPose],
    cfg: RigLibraryConfig | None = None,
    name: str = "",
    roles: dict | None = None,
) -> dict:
    """Write the library; returns {"path", "entries", "landmarks" (how found or None), "seconds", ...}.
    ``roles`` (landmark role -> [(mesh, key)]) defaults to ``core.expression_keys.landmark_roles``; a VRM's
    come from ``rig_poses``'s report."""
    cfg = cfg or RigLibraryConfig()
    t0 = time.time()
    out = out.rstrip("/\\")
    if os.path.exists(os.path.join(out, "library.json")) and not cfg.overwrite:
        raise FileExistsError(f"{out} already holds a library: choose another folder or allow overwriting")
    objs = character_objects(face_object)
    keys = shape_key_meshes(objs)
    primary = max(keys, key=lambda m: len(keys[m])) if keys else face_object.name
    used: dict[str, set[str]] = {}
    for p in poses:
        for m, kv in p.values.items():
            used.setdefault(m, set()).update(kv)
    staging = out + ".partial"
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(os.path.join(staging, "thumbs"))
    entries = []
    info: dict = {}
    try:
        with RestState(objs):
            region = face_region(objs, [p.values for p in poses], cfg.thumbnail.move_tolerance)
            frame = frame_face(region, cfg.thumbnail)
            lm = find_landmarks(objs, region, frame, roles or ek.landmark_roles(keys))
            info["landmarks"] = lm.method if lm.complete() else None
            info["landmarks_missing"] = lm.missing()
            with ThumbnailScene(objs, frame, cfg.thumbnail) as scene:
                for i, p in enumerate(poses):
                    set_shape_keys(objs, p.values)
                    eid = f"{i:03d}-{_slug(p.name)}"
                    rel = f"thumbs/{eid}.png"
                    scene.render(os.path.join(staging, rel))
                    meshes = {
                        m: {k: float(p.values.get(m, {}).get(k, 0.0)) for k in sorted(ks)} for m, ks in used.items()
                    }
                    entries.append(
                        {
                            "id": eid,
                            "label": p.label,
                            "thumbnail": rel,
                            "pose": {
                                "type": "shape_keys",
                                "target": primary,
                                "values": meshes.get(primary, {}),
                                "meshes": meshes,
                            },
                            "geometry": None,
                            "landmarks": (
                                np.round(project_landmarks(objs, lm, frame), 2).tolist() if lm.complete() else None
                            ),
                            "face_box": _face_box(objs, region, frame),
                            "expression": p.expression,
                            "intensity": p.intensity,
                            "source": p.source,
                        }
                    )
                set_shape_keys(objs, {})
        fmt.write(staging, name or os.path.basename(out), "deepexpr_blender.rigs.builder", entries, [])
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if os.path.exists(out):
        shutil.rmtree(out)
    os.replace(staging, out)
    info.update(
        path=os.path.join(out, "library.json"),
        entries=len(entries),
        seconds=round(time.time() - t0, 2),
        forward=[round(float(v), 3) for v in frame.forward],
        region_vertices=int(sum(int(m.sum()) for m in region.masks.values())),
    )
    log.info("rig library %s: %d entries in %.1f s", out, len(entries), info["seconds"])
    return info
