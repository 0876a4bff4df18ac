"""Headless rendering of a procedural character: scene set-up, one frame, and landmark projection (bpy)."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np

from backend.landmarks import SEMANTIC_NAMES
from deepexpr_blender.toon import AU_SHAPE_KEYS


@dataclass
class View:
    yaw: float = 0.0  # degrees, head turn (positive: towards the image's right)
    pitch: float = 0.0  # degrees, head nod (positive: chin up)
    distance: float = 5.8  # camera distance from the head centre
    light: float = 0.0  # studio light rotation, degrees
    background: tuple[float, float, float] = (0.93, 0.93, 0.95)


def reset_scene(size: int = 256, engine: str = "BLENDER_WORKBENCH"):
    import bpy

    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.render.engine = engine
    scene.render.resolution_x = scene.render.resolution_y = size
    scene.render.resolution_percentage = 100
    scene.render.image_settings.file_format = "PNG"
    scene.render.image_settings.color_mode = "RGB"
    scene.render.film_transparent = False
    scene.view_settings.view_transform = "Standard"
    if engine == "BLENDER_WORKBENCH":
        sh = scene.display.shading
        sh.light = "STUDIO"
        sh.color_type = "MATERIAL"
        sh.show_object_outline = True
        sh.object_outline_color = (0.08, 0.05, 0.05)
        sh.show_cavity = True
        sh.cavity_type = "WORLD"
        sh.show_specular_highlight = False
    world = bpy.data.worlds.new("deepexpr_world")
    scene.world = world
    cam_data = bpy.data.cameras.new("face_cam")
    cam_data.lens = 70
    cam = bpy.data.objects.new("face_cam", cam_data)
    scene.collection.objects.link(cam)
    scene.camera = cam
    return scene


def place_camera(scene, view: View, target=(0.0, 0.0, 0.0)) -> None:
    from mathutils import Vector

    cam = scene.camera
    cam.location = Vector(target) + Vector((0.0, -view.distance, 0.0))
    direction = Vector(target) - cam.location
    cam.rotation_euler = direction.to_track_quat("-Z", "Y").to_euler()
    scene.world.color = view.background
    if scene.render.engine == "BLENDER_WORKBENCH":
        scene.display.shading.studiolight_rotate_z = math.radians(view.light)


def set_expression(obj, values: dict[str, float]) -> None:
    keys = obj.data.shape_keys.key_blocks
    for au in AU_SHAPE_KEYS:
        keys[au].value = float(values.get(au, 0.0))


def set_head_pose(obj, view: View) -> None:
    obj.rotation_euler = (math.radians(-view.pitch), 0.0, math.radians(view.yaw))


def project_landmarks(scene, obj) -> np.ndarray:
    """(N_SEMANTIC, 2) pixel coordinates of the character's named landmarks, shape keys and pose applied."""
    import bpy
    from bpy_extras.object_utils import world_to_camera_view

    depsgraph = bpy.context.evaluated_depsgraph_get()
    ev = obj.evaluated_get(depsgraph)
    mesh = ev.to_mesh()
    try:
        lm = obj["deepexpr_landmarks"]
        mw = ev.matrix_world
        w, h = scene.render.resolution_x, scene.render.resolution_y
        pts = []
        for name in SEMANTIC_NAMES:
            co = mw @ mesh.vertices[int(lm[name])].co
            uv = world_to_camera_view(scene, scene.camera, co)
            pts.append((uv.x * w, (1.0 - uv.y) * h))
    finally:
        ev.to_mesh_clear()
    return np.array(pts)


def render(scene, path: str) -> None:
    import bpy

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    scene.render.filepath = path
    bpy.ops.render.render(write_still=True)
