"""Pose kinds behind one interface, chosen through one registry (plain Python: no bpy needed)."""

from __future__ import annotations

import ast
import json
import os

import pytest

from deepexpr_blender import poses
from deepexpr_blender.core import library_format as fmt
from deepexpr_blender.errors import KeyingError, PoseError
from deepexpr_blender.poses.base import PoseKind

from .conftest import ROOT


def test_every_registered_kind_implements_the_interface_once():
    types = [k.type for k in poses.KINDS]
    assert len(types) == len(set(types)) and {"shape_keys", "armature_action", "image"} <= set(types)
    for kind in poses.KINDS:
        assert isinstance(kind, PoseKind) and kind.title
        assert type(kind).key is not PoseKind.key, f"{kind.type} cannot key"
        assert fmt.POSE_TYPE_PATTERN.fullmatch(kind.type)


def _library(tmp_path, pose: dict) -> tuple[dict, str]:
    root = str(tmp_path)
    os.makedirs(os.path.join(root, "thumbs"), exist_ok=True)
    open(os.path.join(root, "thumbs", "a.png"), "wb").write(b"png")
    entry = {"id": "a", "label": "joy", "thumbnail": "thumbs/a.png", "pose": pose, "geometry": None}
    return {"format": fmt.FORMAT, "version": fmt.VERSION, "feature_names": [], "entries": [entry]}, root


@pytest.mark.parametrize(
    "pose,needle",
    [
        ({"type": "shape_keys", "target": "pip", "values": {"jaw_drop": "wide"}}, "'values'"),
        ({"type": "shape_keys", "values": {"jaw_drop": 1.0}}, "'target'"),
        ({"type": "armature_action", "target": "rig", "action": "Joy", "frame": "one"}, "'frame'"),
        ({"type": "image", "path": "images/missing.png"}, "image pose file missing"),
        ({"type": "morph_target_v9"}, "unknown pose type 'morph_target_v9'"),
    ],
)
def test_kind_specific_validation_names_the_entry(tmp_path, pose, needle):
    data, root = _library(tmp_path, pose)
    fmt.validate(data, root)  # the shared core checks only the envelope: the backend accepts any named kind
    with pytest.raises(fmt.LibraryError) as err:
        poses.validate_library(data, root)
    assert needle in str(err.value) and "entry 0 ('a')" in str(err.value)


def test_valid_poses_of_each_kind_pass(tmp_path):
    os.makedirs(tmp_path / "images")
    (tmp_path / "images" / "a.png").write_bytes(b"png")
    for pose in (
        {"type": "shape_keys", "target": "pip", "values": {"jaw_drop": 1, "brow_lower": 0.5}},
        {"type": "armature_action", "target": "rig", "action": "Joy", "frame": 3},
        {"type": "image", "path": "images/a.png"},
    ):
        data, root = _library(tmp_path, pose)
        assert poses.validate_library(data, root) is data


def test_core_refuses_a_pose_without_a_kind(tmp_path):
    data, root = _library(tmp_path, {"values": {}})
    with pytest.raises(fmt.LibraryError, match="unknown pose type"):
        fmt.validate(data, root)


def test_unknown_kind_cannot_be_keyed_and_says_which_kinds_exist():
    with pytest.raises(PoseError, match="shape_keys, armature_action, image"):
        poses.kind_of({"type": "morph_target_v9"})
    with pytest.raises(KeyingError, match="No target"):
        poses.key_pose(None, {"type": "shape_keys", "target": "x", "values": {}}, 1)


def test_a_new_kind_is_one_module_plus_one_registry_line(tmp_path, monkeypatch):
    """Register a kind the way a new module would: validation and keying find it without other changes."""

    class Stamp(PoseKind):
        type, title = "stamp", "stamp pose"

        def validate(self, pose, root):
            if not isinstance(pose.get("ink"), str):
                raise PoseError("stamp pose needs 'ink'")

        def key(self, obj, pose, frame, library_root=""):
            return [f"{obj}:{pose['ink']}@{frame}"]

        def check_target(self, obj, pose, library_root=""):
            pass

    monkeypatch.setattr(poses, "KINDS", (*poses.KINDS, Stamp()))
    data, root = _library(tmp_path, {"type": "stamp", "ink": "red"})
    assert poses.validate_library(json.loads(json.dumps(data)), root)
    assert poses.key_pose("obj", {"type": "stamp", "ink": "red"}, 7) == ["obj:red@7"]


def test_core_never_imports_bpy_or_the_pose_kinds():
    core = os.path.join(ROOT, "deepexpr_blender", "core")
    for name in os.listdir(core):
        if not name.endswith(".py"):
            continue
        tree = ast.parse(open(os.path.join(core, name), encoding="utf-8").read())
        for node in ast.walk(tree):
            mods = []
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                mods = ["." * node.level + (node.module or "")]
            for m in mods:
                assert not m.startswith(("bpy", "mathutils", "..")), f"core/{name} imports {m}"
                assert "poses" not in m, f"core/{name} imports {m}"


def test_pose_kinds_import_without_bpy():
    """Validation is plain Python: the poses package and its kinds import no bpy at module level."""
    folder = os.path.join(ROOT, "deepexpr_blender", "poses")
    for name in os.listdir(folder):
        if name.endswith(".py"):
            tree = ast.parse(open(os.path.join(folder, name), encoding="utf-8").read())
            top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
            for node in top:
                mods = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                assert not any(m.split(".")[0] in ("bpy", "mathutils", "compat") for m in mods), (name, mods)
