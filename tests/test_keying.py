"""Keying each pose kind in real headless Blender (every supported version: the moved animation APIs go
through deepexpr_blender/compat.py)."""

from __future__ import annotations

import os

import cv2
import numpy as np
import pytest

bpy = pytest.importorskip("bpy", reason="bpy (Blender as a Python module) is not installed")

from deepexpr_blender import compat, poses  # noqa: E402
from deepexpr_blender.errors import KeyingError  # noqa: E402
from deepexpr_blender.library_from_rig.build import build_library  # noqa: E402
from deepexpr_blender.poses import image_swap  # noqa: E402

pytestmark = pytest.mark.blender


def _ferg(root) -> str:
    for expr, color in (("joy", 200), ("anger", 60)):
        d = root / "toony" / f"toony_{expr}"
        d.mkdir(parents=True)
        img = np.full((80, 60, 3), color, np.uint8)
        cv2.circle(img, (30, 40), 20, (0, 0, 255), -1)
        cv2.imwrite(str(d / "a.png"), img)
    return str(root)


def test_image_swap_shows_one_drawing_at_a_time(tmp_path):
    bpy.ops.wm.read_factory_settings(use_empty=True)
    lib = os.path.dirname(build_library(str(tmp_path / "lib"), image_swap.KIND.find_in_folder(_ferg(tmp_path))))
    entries = poses.load_library(lib)["entries"]
    holder = bpy.data.objects.new("toony", None)
    bpy.context.scene.collection.objects.link(holder)
    bpy.context.scene.frame_start = 1
    poses.key_pose(holder, entries[0]["pose"], 5, lib)
    poses.key_pose(holder, entries[1]["pose"], 12, lib)
    drawings = sorted(holder.children, key=lambda c: c.name)
    assert len(drawings) == 2
    for frame, shown in ((5, entries[0]), (8, entries[0]), (12, entries[1]), (20, entries[1])):
        bpy.context.scene.frame_set(frame)
        visible = [c for c in holder.children if not c.hide_render]
        assert [c["deepexpr_image"] for c in visible] == [os.path.join(lib, shown["pose"]["path"])], frame
    for c in drawings:
        curves = compat.action_fcurves(c)
        assert curves and all(k.interpolation == "CONSTANT" for fc in curves for k in fc.keyframe_points)


def test_a_target_that_cannot_take_the_pose_is_refused_before_anything_is_keyed():
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.mesh.primitive_cube_add()
    cube = bpy.context.active_object
    pose = {"type": "shape_keys", "target": "pip", "values": {"jaw_drop": 1.0}}
    with pytest.raises(KeyingError, match="shape keys"):
        poses.key_pose(cube, pose, 1)
    assert cube.animation_data is None and cube.data.shape_keys is None
    with pytest.raises(KeyingError, match="not an armature"):
        poses.key_pose(cube, {"type": "armature_action", "target": "rig", "action": "a", "frame": 1}, 1)
