"""Pose libraries from a user's rig, in real headless Blender: shape-key actions, armature poses, image folders."""

from __future__ import annotations

import os

import cv2
import numpy as np
import pytest

bpy = pytest.importorskip("bpy", reason="bpy (Blender as a Python module) is not installed")

from backend.library import load_library  # noqa: E402
from deepexpr_blender import poses  # noqa: E402
from deepexpr_blender.core.vocabulary import label_from_name  # noqa: E402
from deepexpr_blender.errors import RigError  # noqa: E402
from deepexpr_blender.library_from_rig.build import build_library  # noqa: E402
from deepexpr_blender.poses import armature, image_swap, shape_keys  # noqa: E402

pytestmark = pytest.mark.blender


def _fresh():
    bpy.ops.wm.read_factory_settings(use_empty=True)
    return bpy.context.scene


def _face_mesh():
    """A sphere 'face' with a mouth-open shape key (moves the lower front vertices) and a brow-raise key."""
    import bmesh

    mesh = bpy.data.meshes.new("face")
    bm = bmesh.new()
    bmesh.ops.create_uvsphere(bm, u_segments=24, v_segments=16, radius=1.0)
    bm.to_mesh(mesh)
    bm.free()
    obj = bpy.data.objects.new("face", mesh)
    bpy.context.scene.collection.objects.link(obj)
    obj.shape_key_add(name="Basis")
    co = np.array([v.co[:] for v in mesh.vertices])
    for name, sel, d in (
        ("jaw_open", (co[:, 2] < -0.3) & (co[:, 1] < 0), (0, 0, -0.6)),
        ("brow_up", (co[:, 2] > 0.3) & (co[:, 1] < 0), (0, 0, 0.4)),
    ):
        kb = obj.shape_key_add(name=name)
        new = co + np.where(sel[:, None], np.array(d), 0)
        kb.data.foreach_set("co", new.astype(np.float32).ravel())
    return obj


def _key(obj, frame, values):
    for name, v in values.items():
        kb = obj.data.shape_keys.key_blocks[name]
        kb.value = v
        kb.keyframe_insert("value", frame=frame)


def test_shape_key_keyframes_become_poses_and_a_library(tmp_path):
    _fresh()
    obj = _face_mesh()
    _key(obj, 1, {"jaw_open": 0.0, "brow_up": 0.0})
    _key(obj, 10, {"jaw_open": 1.0, "brow_up": 1.0})
    _key(obj, 20, {"jaw_open": 0.3, "brow_up": 0.0})
    assert poses.kinds_finding_in(obj) == [shape_keys.KIND]
    with pytest.raises(RigError, match="Keyed frames as poses"):  # an animation is not taken for poses...
        poses.find_poses(obj)
    found = poses.find_poses(obj, animation=True)  # ...unless the user says so
    assert found[0]["name"] == "neutral (rest)" and found[0]["label"] == "neutral"  # the rig's own neutral
    found = found[1:]
    assert [p["pose"]["values"]["jaw_open"] for p in found] == pytest.approx([0.0, 1.0, 0.3])
    assert all(p["label"] is None and p["source"] == "keyed" for p in found)
    lib_json = build_library(str(tmp_path / "face_lib"), found, rig=obj, size=96)
    lib = load_library(os.path.dirname(lib_json))
    assert len(lib.entries) == 2  # the frame that keys nothing (all 0) moves nothing: left out
    thumbs = [cv2.imread(lib.thumbnail(i)) for i in range(2)]
    assert all(t.shape == (96, 96, 3) and t.std() > 5 for t in thumbs)
    assert np.abs(thumbs[0].astype(float) - thumbs[1]).mean() > 1.0  # the open jaw shows in the thumbnail
    with pytest.raises(FileExistsError, match="already holds a library"):  # a rebuild asks first
        build_library(str(tmp_path / "face_lib"), found, rig=obj, size=96)
    # The user's scene is untouched: no camera added, frame unchanged.
    assert bpy.context.scene.camera is None and [o.name for o in bpy.context.scene.objects] == ["face"]


def test_pose_markers_label_poses():
    _fresh()
    obj = _face_mesh()
    _key(obj, 1, {"jaw_open": 0.0, "brow_up": 0.0})
    _key(obj, 5, {"jaw_open": 1.0, "brow_up": 1.0})
    action = obj.data.shape_keys.animation_data.action
    m = action.pose_markers.new("Surprise_big")
    m.frame = 5
    poses = shape_keys.KIND.find(obj)
    assert len(poses) == 1 and poses[0]["label"] == "surprise"
    assert poses[0]["pose"]["values"]["jaw_open"] == pytest.approx(1.0)


def test_mesh_without_animation_says_what_to_do():
    _fresh()
    obj = _face_mesh()
    with pytest.raises(RigError, match="key one pose per frame and add a pose marker"):
        shape_keys.KIND.find(obj)


def test_armature_action_and_pose_assets(tmp_path):
    _fresh()
    arm_data = bpy.data.armatures.new("rig")
    arm = bpy.data.objects.new("rig", arm_data)
    bpy.context.scene.collection.objects.link(arm)
    bpy.context.view_layer.objects.active = arm
    bpy.ops.object.mode_set(mode="EDIT")
    for name, head, tail in (("root", (0, 0, 0), (0, 0, 1)), ("head", (0, 0, 1), (0, 0, 2))):
        b = arm_data.edit_bones.new(name)
        b.head, b.tail = head, tail
    arm_data.edit_bones["head"].parent = arm_data.edit_bones["root"]
    bpy.ops.object.mode_set(mode="OBJECT")
    bpy.ops.mesh.primitive_cube_add(size=0.8, location=(0.4, 0, 1.5))
    cube = bpy.context.active_object
    cube.parent = arm
    cube.parent_type = "BONE"
    cube.parent_bone = "head"
    cube.location = (0.4, -1.0, 0.0)  # relative to the bone's tail
    pb = arm.pose.bones["head"]
    pb.rotation_mode = "XYZ"
    for frame, angle in ((1, 0.0), (10, 0.7)):
        pb.rotation_euler = (0, angle, 0)
        pb.keyframe_insert("rotation_euler", frame=frame)
    asset = bpy.data.actions.new("Joy pose")
    asset.asset_mark()
    assert [p["source"] for p in armature.KIND.find(arm)] == ["assets"]  # the take is not taken for poses
    poses = armature.KIND.find(cube, animation=True)  # the cube's character: the armature
    assert [p["pose"]["frame"] for p in poses[:2]] == [1.0, 10.0]
    assert poses[-1]["label"] == "joy" and poses[-1]["pose"]["action"] == "Joy pose"
    rest = {"pose": armature.KIND.rest(arm), "label": "neutral", "name": "rest"}
    lib = load_library(os.path.dirname(build_library(str(tmp_path / "rig_lib"), [rest, poses[1]], rig=arm, size=64)))
    t0, t1 = (cv2.imread(lib.thumbnail(i)) for i in range(2))
    assert np.abs(t0.astype(float) - t1).mean() > 1.0  # the head turned between the two poses


def test_image_folder_in_ferg_layout(tmp_path):
    _fresh()
    root = tmp_path / "ferg"
    for expr, color in (("joy", 200), ("anger", 60)):
        d = root / "toony" / f"toony_{expr}"
        d.mkdir(parents=True)
        img = np.full((120, 100, 3), color, np.uint8)
        cv2.circle(img, (50, 60), 30, (0, 0, 255), -1)
        cv2.imwrite(str(d / "a.png"), img)
    poses = image_swap.KIND.find_in_folder(str(root))
    assert sorted(p["label"] for p in poses) == ["anger", "joy"]
    lib = load_library(os.path.dirname(build_library(str(tmp_path / "img_lib"), poses, size=64)))
    assert len(lib.entries) == 2
    thumb = cv2.imread(lib.thumbnail(0))
    assert max(thumb.shape[:2]) == 64
    assert all(os.path.isfile(os.path.join(lib.root, e["pose"]["path"])) for e in lib.entries)


def test_label_from_name():
    assert label_from_name("Happy_02") == "joy"
    assert label_from_name("anger") == "anger"
    assert label_from_name("frame 12") is None
