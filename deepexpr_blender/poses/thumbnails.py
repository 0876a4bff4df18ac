"""Thumbnail rendering shared by the pose kinds: Workbench, an orthographic front camera framed on given
points, in a temporary scene (the user's scene, camera and render settings are untouched)."""

from __future__ import annotations

import os

import numpy as np


def bbox_points(obj) -> np.ndarray:
    """The 8 world-space corners of ``obj``'s bounding box."""
    from mathutils import Vector

    return np.array([obj.matrix_world @ Vector(c) for c in obj.bound_box])


def render_thumbnail(obj, points: np.ndarray, path: str, size: int = 256, margin: float = 1.35) -> str:
    """Render ``obj`` (as currently posed, with its children) from a front camera looking along +Y, framed
    on ``points``; writes a ``size``² PNG at ``path``."""
    import bpy

    lo, hi = points.min(axis=0), points.max(axis=0)
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
