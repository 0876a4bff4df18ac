"""Pose libraries from a user's rig (bpy side): enumerate candidate poses, render thumbnails, write the library.

Sources:
- ``shape_key_poses(obj)``: a mesh's shape-key poses the animator saved: pose markers of the shape-key action
  (a marker named after an expression, e.g. "joy" or "Joy_2", labels the pose), else every keyed frame;
- ``armature_poses(arm)``: pose assets (actions marked as assets) and the markers / keyed frames of the
  armature's own action;
- ``image_folder_poses(folder)``: a folder of images in the FERG-DB layout
  (``<character>/<character>_<expression>/*.png``), for 2D characters.

Thumbnails are rendered with Workbench from a face camera framed automatically: for a mesh, on the vertices
its shape keys move (the face); for an armature, on its head bone (else the whole rig). Rendering happens in
a temporary scene, so the user's scene, camera and render settings are untouched.
"""

from __future__ import annotations

import os
import re
import shutil

import numpy as np

from .core import library_format as fmt
from .core.vocabulary import ferg_layout, label_from_name


def _channelbag(id_data):
    from bpy_extras.anim_utils import action_get_channelbag_for_slot

    ad = getattr(id_data, "animation_data", None)
    if ad is None or ad.action is None:
        return None, None
    return ad.action, action_get_channelbag_for_slot(ad.action, ad.action_slot)


def keyed_frames(action, channelbag) -> list[tuple[float, str | None]]:
    """(frame, marker name) for each pose marker, else (frame, None) for each keyed frame."""
    markers = list(getattr(action, "pose_markers", []) or [])
    if markers:
        return sorted((float(m.frame), m.name) for m in markers)
    frames = set()
    for fc in channelbag.fcurves if channelbag else []:
        frames.update(round(kp.co.x, 3) for kp in fc.keyframe_points)
    return [(f, None) for f in sorted(frames)]


def shape_key_poses(obj) -> list[dict]:
    """Candidate poses of a mesh with shape keys, as library pose dicts with an optional label."""
    import bpy

    key = obj.data.shape_keys if obj.type == "MESH" else None
    if key is None or len(key.key_blocks) < 2:
        raise ValueError(f"{obj.name} has no shape keys to make poses from")
    action, bag = _channelbag(key)
    if action is None:
        raise ValueError(f"{obj.name}'s shape keys have no action: key some poses (or add pose markers) first")
    scene = bpy.context.scene
    keep = scene.frame_current
    poses = []
    try:
        for frame, marker in keyed_frames(action, bag):
            scene.frame_set(int(frame), subframe=frame - int(frame))
            values = {kb.name: round(float(kb.value), 5) for kb in key.key_blocks[1:]}
            poses.append(
                {
                    "pose": {"type": "shape_keys", "target": obj.name, "values": values},
                    "label": label_from_name(marker) if marker else None,
                    "name": marker or f"frame {frame:g}",
                }
            )
    finally:
        scene.frame_set(keep)
    return poses


def armature_poses(arm) -> list[dict]:
    """Pose assets plus the markers / keyed frames of the armature's own action."""
    import bpy

    if arm.type != "ARMATURE":
        raise ValueError(f"{arm.name} is not an armature")
    poses = []
    own, bag = _channelbag(arm)
    if own is not None:
        for frame, marker in keyed_frames(own, bag):
            poses.append(
                {
                    "pose": {"type": "armature_action", "target": arm.name, "action": own.name, "frame": frame},
                    "label": label_from_name(marker) if marker else None,
                    "name": marker or f"frame {frame:g}",
                }
            )
    for act in bpy.data.actions:
        if act.asset_data is not None and act is not own:
            start = float(act.frame_range[0])
            poses.append(
                {
                    "pose": {"type": "armature_action", "target": arm.name, "action": act.name, "frame": start},
                    "label": label_from_name(act.name),
                    "name": act.name,
                }
            )
    if not poses:
        raise ValueError(f"{arm.name} has no pose assets, markers or keyed frames to make poses from")
    return poses


def image_folder_poses(folder: str) -> list[dict]:
    """FERG-DB layout: <character>/<character>_<expression>/*.png -> image poses, labelled by the folder."""
    poses = [
        {
            "pose": {"type": "image", "path": path},
            "label": label_from_name(expr),
            "name": f"{char}/{os.path.basename(path)}",
        }
        for char, expr, path in ferg_layout(folder)
    ]
    if not poses:
        raise ValueError(f"no images in the FERG-DB layout (<character>/<character>_<expression>/*.png) under {folder}")
    return poses


# ------------------------------------------------------------------------------------------ applying poses
def apply_pose(pose: dict, obj=None) -> None:
    """Set the rig to ``pose`` (no keying). ``obj`` defaults to the pose's target object."""
    import bpy

    obj = obj or bpy.data.objects.get(pose.get("target", ""))
    if pose["type"] == "shape_keys":
        keys = obj.data.shape_keys.key_blocks
        for name, value in pose["values"].items():
            if name in keys:
                keys[name].value = value
    elif pose["type"] == "armature_action":
        action = bpy.data.actions[pose["action"]]
        slot = None
        for s in getattr(action, "slots", []):
            if s.target_id_type in ("OBJECT", "UNSPECIFIED"):
                slot = s
                break
        kwargs = {"action_slot": slot} if slot is not None else {}
        # apply_pose_from_action only poses the selected bones when some are selected: pose them all.
        # (selection lives on pose bones in Blender 5.0, on bones before)
        bones = obj.pose.bones if "select" in bpy.types.PoseBone.bl_rna.properties else obj.data.bones
        selected = [b for b in bones if b.select]
        for b in selected:
            b.select = False
        try:
            obj.pose.apply_pose_from_action(action, evaluation_time=pose["frame"], **kwargs)
        except TypeError:
            obj.pose.apply_pose_from_action(action, evaluation_time=pose["frame"])
        finally:
            for b in selected:
                b.select = True
    else:
        raise ValueError(f"pose type {pose['type']!r} is not applied to a rig")


def _face_points(obj) -> np.ndarray:
    """World-space points to frame: the vertices shape keys move, the head bone, or the whole bounding box."""
    from mathutils import Vector

    mw = obj.matrix_world
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
            m = np.array(mw)
            return pts @ m[:3, :3].T + m[:3, 3]
    if obj.type == "ARMATURE":
        head = next((b for b in obj.pose.bones if "head" in b.name.lower()), None)
        if head is not None:
            a, b = mw @ head.head, mw @ head.tail
            length = (b - a).length
            c = (a + b) / 2
            return np.array([c + Vector((dx, 0, dz)) * length for dx in (-0.8, 0.8) for dz in (-0.9, 0.9)])
        children = [c for c in obj.children if c.type == "MESH"]
        if children:
            return np.concatenate([_bbox(c) for c in children])
    return _bbox(obj)


def _bbox(obj) -> np.ndarray:
    return np.array([obj.matrix_world @ __import__("mathutils").Vector(c) for c in obj.bound_box])


def render_thumbnail(obj, path: str, size: int = 256, margin: float = 1.35) -> str:
    """Render ``obj`` (as currently posed) from an automatically framed front camera (looking along +Y)."""
    import bpy

    pts = _face_points(obj)
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    centre = (lo + hi) / 2
    extent = max(hi[0] - lo[0], hi[2] - lo[2], 1e-3) * margin
    scene = bpy.data.scenes.new("deepexpr_thumbnail")
    cam_data = bpy.data.cameras.new("deepexpr_thumbnail_cam")
    cam = bpy.data.objects.new("deepexpr_thumbnail_cam", cam_data)
    world = bpy.data.worlds.new("deepexpr_thumbnail_world")
    try:
        world.color = (0.8, 0.8, 0.82)
        scene.world = world
        scene.view_settings.view_transform = "Standard"
        cam_data.type = "ORTHO"
        cam_data.ortho_scale = float(extent)
        cam.location = (float(centre[0]), float(lo[1] - extent * 3), float(centre[2]))
        cam.rotation_euler = (np.pi / 2, 0.0, 0.0)  # look along +Y
        cam_data.clip_end = float(extent * 10 + (hi[1] - lo[1]) * 2)
        scene.collection.objects.link(cam)
        for o in {obj, *obj.children_recursive}:
            scene.collection.objects.link(o)
        scene.camera = cam
        r = scene.render
        r.engine = "BLENDER_WORKBENCH"
        r.resolution_x = r.resolution_y = size
        r.resolution_percentage = 100
        r.image_settings.file_format = "PNG"
        r.filepath = path
        sh = scene.display.shading
        sh.light, sh.color_type, sh.show_object_outline = "STUDIO", "MATERIAL", True
        scene.frame_current = bpy.context.scene.frame_current
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        bpy.ops.render.render(write_still=True, scene=scene.name)
    finally:
        bpy.data.scenes.remove(scene)
        bpy.data.objects.remove(cam)
        bpy.data.cameras.remove(cam_data)
        bpy.data.worlds.remove(world)
    return path


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "pose"


def build_library(out: str, poses: list[dict], rig=None, name: str = "", size: int = 256) -> str:
    """Write a library folder from ``poses`` (from the functions above); thumbnails rendered from ``rig``
    (posed in turn and restored) or, for image poses, resized copies. Returns the library.json path."""
    staging = out.rstrip("/\\") + ".partial"
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(os.path.join(staging, "thumbs"))
    entries = []
    saved = _save_state(rig) if rig is not None else None
    try:
        for i, p in enumerate(poses):
            eid = f"{i:04d}-{_slug(p['name'])}"
            rel = f"thumbs/{eid}.png"
            pose = dict(p["pose"])
            if pose["type"] == "image":
                _copy_thumbnail(pose["path"], os.path.join(staging, rel), size)
                ext = os.path.splitext(pose["path"])[1].lower()
                os.makedirs(os.path.join(staging, "images"), exist_ok=True)
                shutil.copyfile(pose["path"], os.path.join(staging, "images", eid + ext))
                pose["path"] = f"images/{eid}{ext}"
            else:
                apply_pose(pose, rig)
                render_thumbnail(rig, os.path.join(staging, rel), size)
            entries.append(
                {
                    "id": eid,
                    "label": p.get("label"),
                    "thumbnail": rel,
                    "pose": pose,
                    "geometry": None,
                    "landmarks": None,
                }
            )
    finally:
        if saved is not None:
            _restore_state(rig, saved)
    path = fmt.write(staging, name or os.path.basename(out.rstrip("/\\")), "deepexpr_blender.rig_library", entries, [])
    shutil.rmtree(out, ignore_errors=True)
    os.replace(staging, out)
    return os.path.join(out, os.path.basename(path))


def _copy_thumbnail(src: str, dst: str, size: int) -> None:
    import bpy

    img = bpy.data.images.load(src, check_existing=False)
    try:
        w, h = img.size
        s = size / max(w, h)
        img.scale(max(1, round(w * s)), max(1, round(h * s)))
        img.filepath_raw = dst
        img.file_format = "PNG"
        img.save()
    finally:
        bpy.data.images.remove(img)


def _animated_id(rig):
    return rig.data.shape_keys if rig.type == "MESH" else rig


def _save_state(rig) -> dict:
    """The rig's pose and its action; the action is detached while thumbnails render (it would override the
    pose being shown) and given back afterwards."""
    state: dict = {}
    if rig.type == "MESH" and rig.data.shape_keys:
        state["values"] = {kb.name: kb.value for kb in rig.data.shape_keys.key_blocks}
    elif rig.type == "ARMATURE":
        state["bones"] = {
            b.name: (b.location.copy(), b.rotation_quaternion.copy(), b.rotation_euler.copy(), b.scale.copy())
            for b in rig.pose.bones
        }
    ad = getattr(_animated_id(rig), "animation_data", None)
    if ad is not None and ad.action is not None:
        state["action"], state["slot"] = ad.action, ad.action_slot
        ad.action = None
    return state


def _restore_state(rig, state: dict) -> None:
    if "action" in state:
        ad = _animated_id(rig).animation_data
        ad.action = state["action"]
        if state["slot"] is not None:
            ad.action_slot = state["slot"]
    for name, v in state.get("values", {}).items():
        rig.data.shape_keys.key_blocks[name].value = v
    for b in rig.pose.bones if "bones" in state else ():
        b.location, b.rotation_quaternion, b.rotation_euler, b.scale = state["bones"][b.name]
