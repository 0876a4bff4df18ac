"""The VRM expression-table reader (``deepexpr_blender.core.vrm``), plain Python: VRM 1.0 and 0.x tables
resolved to Blender's names, and every kind of broken file or table refused with a message naming it."""

from __future__ import annotations

import copy
import struct

import pytest

from deepexpr_blender.core import vrm


def _doc() -> dict:
    """A glTF document: node 0 'Body' (mesh 0, 3 targets, one unnamed), node 1 'Face' (mesh 1, named targets
    with a duplicate), node 2 without a mesh."""
    return {
        "asset": {"version": "2.0"},
        "accessors": [{"name": "pos"}, {"name": "acc_smile"}, {"name": "acc_b"}, {"name": ""}],
        "meshes": [
            {
                "name": "body_mesh",
                "primitives": [
                    {"attributes": {"POSITION": 0}, "targets": [{"POSITION": 1}, {"POSITION": 2}, {"NORMAL": 3}]}
                ],
            },
            {
                "name": "face_mesh",
                "extras": {
                    "targetNames": ["Fcl_ALL_Joy", "Fcl_ALL_Angry", "Fcl_ALL_Joy", "Fcl_EYE_Close", "Fcl_MTH_A"]
                },
                "primitives": [{"attributes": {"POSITION": 0}, "targets": [{"POSITION": 1}] * 5}],
            },
        ],
        "nodes": [{"name": "Body", "mesh": 0}, {"name": "Face", "mesh": 1}, {"name": "Root", "children": [0, 1]}],
    }


def _vrm1(expressions: dict) -> bytes:
    doc = _doc()
    doc["extensionsUsed"] = ["VRMC_vrm"]
    doc["extensions"] = {"VRMC_vrm": {"specVersion": "1.0", "expressions": expressions}}
    return vrm.write_glb(doc, b"\0" * 8)


def _vrm0(groups) -> bytes:
    doc = _doc()
    doc["extensions"] = {"VRM": {"blendShapeMaster": {"blendShapeGroups": groups}}}
    return vrm.write_glb(doc, None)


GOOD_1 = {
    "preset": {
        "happy": {"morphTargetBinds": [{"node": 1, "index": 0, "weight": 1.0}]},
        "angry": {"morphTargetBinds": [{"node": 1, "index": 1, "weight": 0.8}, {"node": 0, "index": 0, "weight": 0.5}]},
        "relaxed": {"morphTargetBinds": [{"node": 1, "index": 2, "weight": 0.4}], "isBinary": True},
        "blink": {"morphTargetBinds": [{"node": 1, "index": 3, "weight": 1.0}]},
        "aa": {"morphTargetBinds": [{"node": 1, "index": 4, "weight": 1.0}]},
        "sad": {"morphTargetBinds": []},
    },
    "custom": {"Surprised_big": {"morphTargetBinds": [{"node": 1, "index": 4, "weight": 0.9}]}},
}


def test_shape_key_names_follow_blenders_importer():
    doc = _doc()
    # extras.targetNames, duplicates made unique like Blender's importer
    assert vrm.shape_key_names(doc, 1) == [
        "Fcl_ALL_Joy",
        "Fcl_ALL_Angry",
        "Fcl_ALL_Joy.001",
        "Fcl_EYE_Close",
        "Fcl_MTH_A",
    ]
    # no targetNames: the POSITION accessor's name; a target without POSITION gets no shape key
    assert vrm.shape_key_names(doc, 0) == ["acc_smile", "acc_b", None]
    doc["accessors"][2].pop("name")
    assert vrm.shape_key_names(doc, 0)[1] == "target_1"
    assert vrm.object_names(doc) == {0: "Body", 1: "Face", 2: "Root"}


def test_vrm1_table_resolves_to_labels_and_blender_names():
    t = vrm.parse_vrm(_vrm1(GOOD_1))
    assert t.version == "1.0"
    by = {e.name: e for e in t.expressions}
    assert by["happy"].label == "joy" and by["happy"].binds[0].shape_key == "Fcl_ALL_Joy"
    assert by["happy"].binds[0].objects == ("Face",) and by["happy"].binds[0].node == 1
    assert [(b.objects, b.shape_key, b.weight) for b in by["angry"].binds] == [
        (("Face",), "Fcl_ALL_Angry", 0.8),
        (("Body",), "acc_smile", 0.5),
    ]
    assert by["relaxed"].label is None and by["relaxed"].expression == "relaxed" and by["relaxed"].is_binary
    assert by["relaxed"].binds[0].shape_key == "Fcl_ALL_Joy.001"
    assert by["blink"].expression is None and by["aa"].expression is None  # not expressions
    assert by["Surprised_big"].preset is None and by["Surprised_big"].label == "surprise"
    # poses: expressions with binds (sad has none)
    assert [e.name for e in t.poses()] == ["happy", "angry", "relaxed", "Surprised_big"]


def test_vrm0_table_weights_and_mesh_binds():
    groups = [
        {"name": "Joy", "presetName": "joy", "binds": [{"mesh": 1, "index": 0, "weight": 100}]},
        {"name": "Sorrow", "presetName": "sorrow", "binds": [{"mesh": 1, "index": 1, "weight": 50}]},
        {"name": "Fun", "presetName": "fun", "binds": [{"mesh": 1, "index": 2, "weight": 100}]},
        {"name": "Surprised", "presetName": "unknown", "binds": [{"mesh": 1, "index": 4, "weight": 100}]},
        {"name": "A", "presetName": "a", "binds": [{"mesh": 1, "index": 4, "weight": 100}]},
    ]
    t = vrm.parse_vrm(_vrm0(groups))
    assert t.version == "0.x"
    got = {e.name: (e.label, e.expression, e.binds[0].weight, e.binds[0].objects) for e in t.expressions}
    assert got == {
        "Joy": ("joy", "joy", 1.0, ("Face",)),
        "Sorrow": ("sadness", "sadness", 0.5, ("Face",)),
        "Fun": (None, "fun", 1.0, ("Face",)),
        "Surprised": ("surprise", "surprise", 1.0, ("Face",)),
        "A": (None, None, 1.0, ("Face",)),
    }


def test_write_and_read_glb_round_trip():
    doc = _doc()
    data = vrm.write_glb(doc, b"abc")
    assert len(data) % 4 == 0
    back, binary = vrm.read_glb(data)
    assert back == doc and binary.startswith(b"abc")


def _bad_container(kind: str) -> bytes:
    good = _vrm1(GOOD_1)
    if kind == "magic":
        return b"GLTF" + good[4:]
    if kind == "version":
        return good[:4] + struct.pack("<I", 1) + good[8:]
    if kind == "truncated":
        return good[: len(good) // 2]
    if kind == "chunk":
        return good[:16] + struct.pack("<I", vrm.CHUNK_BIN) + good[20:]
    if kind == "json":
        n = struct.unpack_from("<I", good, 12)[0]
        return good[:20] + b"{" * n + good[20 + n :]
    if kind == "tiny":
        return b"glTF"
    raise ValueError(kind)


@pytest.mark.parametrize(
    "kind, words",
    [
        ("magic", "not a glTF binary"),
        ("version", "version 1"),
        ("truncated", "truncated"),
        ("chunk", "expected the JSON chunk"),
        ("json", "does not parse"),
        ("tiny", "too short"),
    ],
)
def test_broken_files_are_named(kind, words):
    with pytest.raises(vrm.VrmError, match=words):
        vrm.parse_vrm(_bad_container(kind), "avatar.vrm")


def _broken_table(change) -> dict:
    t = copy.deepcopy(GOOD_1)
    change(t)
    return t


@pytest.mark.parametrize(
    "change, words",
    [
        (
            lambda t: t["preset"]["happy"]["morphTargetBinds"][0].update(node=9),
            "expression 'happy' bind 0: node 9 does not exist",
        ),
        (lambda t: t["preset"]["happy"]["morphTargetBinds"][0].update(node=2), "node 2 \\('Root'\\) has no mesh"),
        (lambda t: t["preset"]["happy"]["morphTargetBinds"][0].update(index=7), "morph target 7 does not exist"),
        (lambda t: t["preset"]["angry"]["morphTargetBinds"][1].update(index=2), "moves no vertex position"),
        (lambda t: t["preset"]["happy"]["morphTargetBinds"][0].update(weight="max"), "weight 'max' is not a number"),
        (lambda t: t["preset"]["happy"]["morphTargetBinds"][0].update(weight=1.5), "outside 0..1"),
        (lambda t: t["preset"]["happy"]["morphTargetBinds"][0].update(index=True), "not an integer index"),
        (lambda t: t["preset"].update(happy=[1, 2]), "expression 'happy' is not an object"),
        (lambda t: t.update(preset=[]), "expressions.preset is not an object"),
    ],
)
def test_broken_vrm1_tables_are_named(change, words):
    with pytest.raises(vrm.VrmError, match=words):
        vrm.parse_vrm(_vrm1(_broken_table(change)), "avatar.vrm")


def test_broken_vrm0_tables_and_missing_extension():
    with pytest.raises(vrm.VrmError, match="blendShapeGroups is missing or not a list"):
        vrm.parse_vrm(_vrm0({"not": "a list"}))
    with pytest.raises(vrm.VrmError, match="bind 0: mesh 5 does not exist"):
        vrm.parse_vrm(_vrm0([{"name": "Joy", "presetName": "joy", "binds": [{"mesh": 5, "index": 0, "weight": 100}]}]))
    doc = _doc()
    doc["meshes"].append(
        {"name": "orphan", "primitives": [{"attributes": {"POSITION": 0}, "targets": [{"POSITION": 1}]}]}
    )
    doc["extensions"] = {
        "VRM": {"blendShapeMaster": {"blendShapeGroups": [{"name": "Joy", "binds": [{"mesh": 2, "index": 0}]}]}}
    }
    with pytest.raises(vrm.VrmError, match="mesh 2 is used by no node"):
        vrm.parse_vrm(vrm.write_glb(doc, None))
    with pytest.raises(vrm.VrmError, match="no VRM extension"):
        vrm.parse_vrm(vrm.write_glb(_doc(), None), "plain.glb")


def test_read_vrm_names_a_missing_file(tmp_path):
    with pytest.raises(vrm.VrmError, match="cannot read"):
        vrm.read_vrm(str(tmp_path / "nope.vrm"))
