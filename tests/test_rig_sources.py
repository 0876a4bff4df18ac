"""Libraries from real imported rigs through the add-on's own Build library path (the pose kinds'
``find_poses``, then ``library_from_rig.build``), in headless Blender: a VRM, an ARKit-keyed glTF, a plain
shape-key rig whose keys name whole expressions, an armature rig carrying an imported animation. Each is
checked for its labels and intensities, its framing (the face fills the thumbnail, seen from the front, at
rest) and its scores (the smiling sample face retrieves the rig's joy poses, with every part of the score
running)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

bpy = pytest.importorskip("bpy", reason="bpy (Blender as a Python module) is not installed")

from deepexpr_blender import poses  # noqa: E402
from deepexpr_blender.library_from_rig.build import build_from_rig  # noqa: E402
from deepexpr_blender.rigs import character, importing  # noqa: E402

from .rig_fixtures import (  # noqa: E402
    make_toon_arkit_glb,
    make_toon_armature_glb,
    make_toon_named_glb,
    make_toon_vrm,
)
from .test_rigs_build import SEVEN, I, _seen_from_the_front  # noqa: E402

pytestmark = pytest.mark.blender


@pytest.fixture(scope="module")
def shipped_engine():
    from backend.engine import Engine, EngineConfig

    return Engine(EngineConfig(device="cpu"))  # the shipped networks: scores mean something


def _import(path: str):
    bpy.ops.wm.read_factory_settings(use_empty=True)
    objs = importing.import_character(path)
    return importing.pick_face_object(objs)


def _build(face, out: str) -> tuple[list[dict], dict, list[dict]]:
    found = poses.find_poses(face)
    info = build_from_rig(out, found, face, name=os.path.basename(out))
    with open(os.path.join(out, "library.json"), encoding="utf-8") as f:
        return found, info, json.load(f)["entries"]


def _check_library(
    entries: list[dict], labels: set[str], out: str, engine, astronaut_path: str, front: bool = True
) -> None:
    assert {e["label"] for e in entries} - {None} == labels
    assert sum(e["label"] == "neutral" for e in entries) == 1  # the rig's own neutral, once
    for lab in labels - {"neutral"}:
        assert sorted(e["intensity"] for e in entries if e["label"] == lab)[-3:] == [0.5, 0.75, 1.0]
    for e in entries:
        assert e["landmarks"] is not None and e["face_box"] is not None, e["id"]
        if front:
            _seen_from_the_front(e, 256)
    res = engine.retriever.retrieve(astronaut_path, out, top_k=len(entries))
    cands = res["candidates"]
    assert [c["label"] for c in cands[:3]] == ["joy"] * 3, [c["id"] for c in cands[:5]]  # the smiling face
    assert len({c["geo"] for c in cands}) > 3 and len({c["label_distance"] for c in cands}) > 3


def test_vrm_expressions(tmp_path, shipped_engine, astronaut_path):
    face = _import(make_toon_vrm(str(tmp_path / "pip.vrm"), "1.0"))
    found, info, entries = _build(face, str(tmp_path / "lib"))
    assert {p["kind"] for p in found} == {"vrm_expression"}  # the file's own table, found by itself
    assert {e["expression"] for e in entries if e["label"] is None} == {"relaxed"}
    _check_library(entries, SEVEN, str(tmp_path / "lib"), shipped_engine, astronaut_path)


def test_arkit_blendshapes(tmp_path, shipped_engine, astronaut_path):
    face = _import(make_toon_arkit_glb(str(tmp_path / "arkit.glb")))
    found, info, entries = _build(face, str(tmp_path / "lib"))
    assert {p["kind"] for p in found} == {"arkit_expression"} and info["landmarks"] == "motion"
    joy = next(e for e in entries if e["id"].endswith("joy_100"))["pose"]["values"]
    assert joy["mouthSmileLeft"] == 0.85 and joy["cheekSquintLeft"] == 0.75
    _check_library(entries, SEVEN, str(tmp_path / "lib"), shipped_engine, astronaut_path)


def test_plain_shape_keys_named_after_expressions(tmp_path, shipped_engine, astronaut_path):
    face = _import(make_toon_named_glb(str(tmp_path / "named.glb")))
    found, info, entries = _build(face, str(tmp_path / "lib"))
    assert {p["kind"] for p in found} == {"named_expression"}
    anger = next(e for e in entries if e["label"] == "anger" and e["intensity"] == 1.0)["pose"]["values"]
    assert anger["怒り"] == 1.0 and sum(anger.values()) == 1.0  # the MMD key alone, the others at 0
    _check_library(entries, SEVEN, str(tmp_path / "lib"), shipped_engine, astronaut_path)


def test_armature_rig_with_an_imported_dance(tmp_path, shipped_engine, astronaut_path):
    face = _import(make_toon_armature_glb(str(tmp_path / "rigged.glb")))
    arm = character.character_root(face)
    assert arm.type == "ARMATURE" and arm.animation_data.action is not None
    action = arm.animation_data.action
    bpy.context.scene.frame_set(20)  # mid-dance: the head is turned
    before = {b.name: tuple(b.rotation_quaternion) for b in arm.pose.bones}
    found, info, entries = _build(face, str(tmp_path / "lib"))
    assert {p["kind"] for p in found} == {"au_expression"}  # the dance is not taken for poses
    assert not any(p["source"] == "keyed" for p in found)
    assert info["forward"] == pytest.approx([0.0, -1.0, 0.0], abs=0.05)  # the rest pose, not the turned head
    neutral = np.asarray(next(e for e in entries if e["label"] == "neutral")["landmarks"])
    eyes = neutral[[I["l_eye_outer"], I["r_eye_outer"]]]
    assert abs(eyes[0, 1] - eyes[1, 1]) < 3 and abs(eyes.mean(0)[0] - 128) < 12  # level and centred
    assert arm.animation_data.action is action  # given back
    assert {b.name: tuple(b.rotation_quaternion) for b in arm.pose.bones} == before
    x0, y0, x1, y1 = next(e for e in entries if e["label"] == "neutral")["face_box"]
    assert 0.45 * 256 < max(x1 - x0, y1 - y0) < 0.85 * 256 and abs((x0 + x1) / 2 - 128) < 0.1 * 256
    # the toon's AU keys have no blink (the lid tightener stands in), so its lids are found roughly: the order
    # of the points is checked on the rigs above, framing and rest here
    _check_library(entries, SEVEN, str(tmp_path / "lib"), shipped_engine, astronaut_path, front=False)
