"""A labelled pose library from a character's own poses, in one call (bpy); "Build library from rig" and the
evaluations all go through ``build_rig_library``.

    poses, report = rig_poses(objs, vrm_path=None)       # VRM table, else AU scheme, else named keys
    build_rig_library(face_object, out_dir, poses)       # face-on thumbnails + landmarks + face boxes

``poses`` are ``RigPose`` (a library pose of any rig kind: shape keys on one or several meshes, an armature
pose) or ``core.expression_keys.ComposedPose`` (shape-key values per mesh, turned into ``shape_keys`` poses
whose ``values`` hold every key any pose of the library sets, zeros included, so applying one pose clears
the last). Each entry stores ``expression`` (label or extra name), ``intensity``, ``source`` (facs / arkit /
valid / weboji / deepexpr / named / vrm / markers / ...), ``character`` (the rig's root object), ``face_box``
([left, top, right, bottom] thumbnail pixels of the face region) and ``landmarks`` (the named points, when
every one was found).

Nothing half written: the library is built in ``<out>.partial`` and moved into place at the end; an existing
library is replaced only with ``overwrite=True``, and it stays where it was when the build fails. Bad input
(no face, several faces, poses that move nothing, a huge mesh) is a ``RigError`` naming the problem.
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
from ..errors import RigError
from .character import (
    RestState,
    character_objects,
    character_root,
    evaluated_many,
    shape_key_meshes,
    visible_meshes,
)
from .framing import (
    FaceFrame,
    FaceRegion,
    ThumbnailConfig,
    ThumbnailScene,
    face_region,
    frame_face,
    show_pose,
    to_rest,
)
from .landmarks3d import find_landmarks, project_landmarks

log = logging.getLogger(__name__)


@dataclass
class RigLibraryConfig:
    intensities: tuple[float, ...] = ek.DEFAULT_INTENSITIES  # each expression at these strengths
    thumbnail: ThumbnailConfig = field(default_factory=ThumbnailConfig)
    include_extras: bool = True  # keep VRM's relaxed / fun (label None) in the library
    overwrite: bool = False  # replace an existing library at ``out``
    max_vertices: int = 2_000_000  # refuse characters heavier than this (visible mesh vertices)


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
                    raise RigError(
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
        raise RigError(
            "the character has no expression keys this builder recognises (VRM table, ARKit, FACS, VALID, "
            "Weboji or keys named after expressions): key some poses on the timeline instead"
        )
    return poses, report


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-").lower() or "pose"


def _face_box(objs: list, region: FaceRegion, frame: FaceFrame, posed: dict | None = None) -> list[float]:
    """[left, top, right, bottom] thumbnail pixels of the face region in the current pose (``posed``: the
    meshes' evaluated vertices in that pose, ``evaluated_many``, when the caller has them)."""
    if posed is None or any(n not in posed for n in region.masks):
        posed = evaluated_many(objs, region.masks)
    pts = [posed[n][m] for n, m in region.masks.items()]
    px, _ = frame.project(np.concatenate(pts))
    (x0, x1), (y0, y1) = np.percentile(px[:, 0], [2, 98]), np.percentile(px[:, 1], [2, 98])
    return [round(float(v), 1) for v in (x0, y0, x1, y1)]


@dataclass(frozen=True)
class RigPose:
    """One entry to build: a library pose and what it shows."""

    name: str  # shown in lists, used for the entry id
    pose: dict  # the library pose (``type``, ``target``, and the kind's fields)
    label: str | None = None  # canonical label, None when unknown or an extra
    expression: str | None = None  # the expression's own name (a label, an extra such as relaxed, or None)
    intensity: float | None = None  # 0..1 when the pose is an expression at a strength
    source: str = ""  # where it came from (vrm, arkit, facs, valid, weboji, named, markers, keyed, assets)


def from_composed(objs: list, poses: list, pose_type: str = "shape_keys") -> list[RigPose]:
    """``ComposedPose``s as shape-key library poses: ``target`` is the mesh with the most keys, ``meshes`` holds
    every key any of the poses sets on each mesh (zeros included)."""
    keys = shape_key_meshes(objs)
    used: dict[str, set[str]] = {}
    for p in poses:
        for m, kv in p.values.items():
            used.setdefault(m, set()).update(kv)
    primary = max(used or keys, key=lambda m: len(keys.get(m, ()))) if (used or keys) else objs[0].name
    out = []
    for p in poses:
        meshes = {m: {k: float(p.values.get(m, {}).get(k, 0.0)) for k in sorted(ks)} for m, ks in used.items()}
        pose = {"type": pose_type, "target": primary, "values": meshes.get(primary, {}), "meshes": meshes}
        out.append(RigPose(p.name, pose, p.label, p.expression, p.intensity, p.source))
    return out


def roles_from_poses(poses: list[RigPose]) -> dict:
    """Landmark roles a rig's keys do not name, from its labelled poses at full strength: the smile from joy,
    brows and jaw from surprise, the lids from a pose named after a blink (library poses, shown in turn)."""

    def strongest(pred):
        cand = [p for p in poses if pred(p)]
        return max(cand, key=lambda p: p.intensity if p.intensity is not None else 1.0).pose if cand else None

    out = {}
    for role, pred in (
        ("smile", lambda p: p.label == "joy"),
        ("brow_raise", lambda p: p.label == "surprise"),
        ("jaw_open", lambda p: p.label == "surprise"),
        ("eye_close", lambda p: re.search(r"blink|eyes?[ _-]?clos|close[ _-]?eyes?", p.name, re.I) is not None),
    ):
        pose = strongest(pred)
        if pose is not None:
            out[role] = pose
    return out


def several_faces(objs: list, region: FaceRegion, frame: FaceFrame) -> list[str]:
    """The top-level objects whose meshes the poses move, when those are several separate characters (a
    collection holding two heads: their moving regions do not overlap in the view); else []."""
    by_name = {o.name: o for o in objs}
    boxes: dict[str, list[np.ndarray]] = {}
    for n, m in region.masks.items():
        boxes.setdefault(character_root(by_name[n]).name, []).append(frame.project(region.rest[n][m])[0])
    if len(boxes) < 2:
        return []
    ext = {r: (np.concatenate(p).min(axis=0), np.concatenate(p).max(axis=0)) for r, p in boxes.items()}
    roots = sorted(ext)
    for i, a in enumerate(roots):
        for b in roots[i + 1 :]:
            (alo, ahi), (blo, bhi) = ext[a], ext[b]
            if (ahi < blo).any() or (bhi < alo).any():  # the two regions do not overlap
                return roots
    return []


def non_manifold_edges(obj) -> int:
    """Edges of ``obj``'s mesh shared by more than two faces (a fan that has no inside or outside)."""
    me = obj.data
    if not len(me.edges) or not len(me.loops):
        return 0
    idx = np.empty(len(me.loops), np.int64)
    me.loops.foreach_get("edge_index", idx)
    return int((np.bincount(idx, minlength=len(me.edges)) > 2).sum())


def _check_size(objs: list, cfg: RigLibraryConfig) -> int:
    n = sum(len(o.data.vertices) for o in visible_meshes(objs) if o.type == "MESH")
    if n > cfg.max_vertices:
        raise RigError(
            f"the character has {n:,} vertices (over {cfg.max_vertices:,}): this would take minutes per pose; "
            "pick the head's own object, or decimate the body"
        )
    return n


def replace_library(staging: str, out: str) -> None:
    """Move the staged library to ``out``; an existing library there is swapped out first and removed only
    once the new one is in place (put back if the move fails)."""
    old = out + ".previous"
    shutil.rmtree(old, ignore_errors=True)
    if os.path.exists(out):
        os.replace(out, old)
    try:
        os.replace(staging, out)
    except OSError:
        if os.path.exists(old) and not os.path.exists(out):
            os.replace(old, out)
        raise
    shutil.rmtree(old, ignore_errors=True)


def build_rig_library(
    face_object,
    out: str,
    poses: list,
    cfg: RigLibraryConfig | None = None,
    name: str = "",
    roles: dict | None = None,
    progress=None,
) -> dict:
    """Write the library; returns {"path", "entries", "landmarks" (how found or None), "seconds", "dropped"
    (poses that move nothing, left out), "warnings", ...}. ``poses``: ``RigPose`` or ``ComposedPose``.
    ``roles`` (landmark role -> [(mesh, key)] or a library pose) defaults to
    ``core.expression_keys.landmark_roles``, completed from the labelled poses (``roles_from_poses``).
    ``progress(done, total)`` is called after each thumbnail (it may raise to cancel: nothing is written)."""
    return drive(iter_build_rig_library(face_object, out, poses, cfg, name, roles), progress)


def drive(steps, progress=None):
    """Run a build generator to its end (its return value), calling ``progress(done, total)`` at each step; an
    exception from ``progress`` closes the generator (its cleanup runs) and propagates."""
    try:
        while True:
            done, total = next(steps)
            if progress is not None:
                progress(done, total)
    except StopIteration as stop:
        return stop.value
    finally:
        steps.close()


def iter_build_rig_library(
    face_object,
    out: str,
    poses: list,
    cfg: RigLibraryConfig | None = None,
    name: str = "",
    roles: dict | None = None,
):
    """``build_rig_library`` one thumbnail at a time: yields (done, total) after each, returns its report. A
    modal operator steps it between events (progress shown, Esc cancels); closing it early removes the staging
    folder and gives the rig back as it was (the previous library is kept)."""
    cfg = cfg or RigLibraryConfig()
    t0 = time.time()
    out = out.rstrip("/\\")
    if os.path.exists(os.path.join(out, "library.json")) and not cfg.overwrite:
        raise FileExistsError(f"{out} already holds a library: choose another folder or allow overwriting")
    objs = character_objects(face_object)
    n_vertices = _check_size(objs, cfg)
    keys = shape_key_meshes(objs)
    if poses and isinstance(poses[0], ek.ComposedPose):
        poses = from_composed(objs, poses)
    if not poses:
        raise RigError("no poses to build a library from")
    all_roles = dict(roles_from_poses(poses))
    all_roles.update({k: v for k, v in (roles if roles is not None else ek.landmark_roles(keys)).items() if v})
    staging = out + ".partial"
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(os.path.join(staging, "thumbs"))
    entries = []
    info: dict = {"warnings": [], "dropped": []}
    root = character_root(face_object).name
    try:
        with RestState(objs):
            try:
                region = face_region(objs, [p.pose for p in poses], cfg.thumbnail.move_tolerance)
            except (KeyError, ValueError) as exc:
                raise RigError(str(exc).strip("'\"")) from None
            tol = cfg.thumbnail.move_tolerance
            still = [p for p, m in zip(poses, region.pose_motion) if m <= tol and p.label != "neutral"]
            if still:
                info["dropped"] = [p.name for p in still]
                info["warnings"].append(
                    f"{len(still)} pose(s) move nothing and were left out: {', '.join(p.name for p in still[:8])}"
                )
                poses = [p for p in poses if p not in still]
            frame = frame_face(region, cfg.thumbnail)
            apart = several_faces(objs, region, frame)
            if apart:
                raise RigError(
                    f"the poses move several separate faces ({', '.join(apart)}): a library is one character's; "
                    "parent its parts to one object, or pick the character's own collection"
                )
            for n in region.masks:
                bad = non_manifold_edges(next(o for o in objs if o.name == n))
                if bad:
                    info["warnings"].append(f"{n}: {bad} non-manifold edges (normals there may be off)")
            lm = find_landmarks(objs, region, frame, all_roles)
            info["landmarks"] = lm.method if lm.complete() else None
            info["landmarks_missing"] = lm.missing()
            if not lm.complete():
                info["warnings"].append(
                    "landmarks not found for " + ", ".join(lm.missing()[:6])
                    + ": entries carry no landmarks (retrieval finds them on the thumbnails)"
                )  # fmt: skip
            with ThumbnailScene(objs, frame, cfg.thumbnail) as scene:
                need = list(region.masks) + [o for o, _ in lm.vertices.values() if lm.complete()]
                for i, p in enumerate(poses):
                    show_pose(objs, p.pose)
                    eid = f"{i:03d}-{_slug(p.name)}"
                    rel = f"thumbs/{eid}.png"
                    scene.render(os.path.join(staging, rel))
                    posed = evaluated_many(objs, need)  # one evaluation for the face box and the landmarks
                    entries.append(
                        {
                            "id": eid,
                            "label": p.label,
                            "thumbnail": rel,
                            "pose": p.pose,
                            "geometry": None,
                            "landmarks": (
                                np.round(project_landmarks(objs, lm, frame, posed), 2).tolist()
                                if lm.complete()
                                else None
                            ),
                            "face_box": _face_box(objs, region, frame, posed),
                            "expression": p.expression,
                            "intensity": p.intensity,
                            "source": p.source,
                            "character": root,
                        }
                    )
                    yield i + 1, len(poses)
                to_rest(objs)
        fmt.write(staging, name or os.path.basename(out), "deepexpr_blender.rigs.builder", entries, [])
        replace_library(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    info.update(
        path=os.path.join(out, "library.json"),
        entries=len(entries),
        seconds=round(time.time() - t0, 2),
        forward=[round(float(v), 3) for v in frame.forward],
        region_vertices=int(sum(int(m.sum()) for m in region.masks.values())),
        vertices=n_vertices,
    )
    log.info("rig library %s: %d entries in %.1f s", out, len(entries), info["seconds"])
    return info
