"""Procedural characters, the data set renderer and pose libraries, in real headless Blender (bpy)."""

from __future__ import annotations

import json
import os
import shutil

import cv2
import numpy as np
import pytest

pytest.importorskip("bpy", reason="bpy (Blender as a Python module) is not installed")

from backend.errors import DeepExprError  # noqa: E402
from backend.geometry import FEATURE_NAMES, geometric_features  # noqa: E402
from backend.index_store import thumbs_check, thumbs_unchanged  # noqa: E402
from backend.landmarks import SEMANTIC_NAMES  # noqa: E402
from backend.library import load_library  # noqa: E402
from deepexpr_blender.core import protocol  # noqa: E402
from deepexpr_blender.toon import AU_SHAPE_KEYS, CHARACTERS, build_character  # noqa: E402
from training.characters import load_expression_table  # noqa: E402
from training.characters.scene import View, place_camera, project_landmarks, render, reset_scene, set_expression  # noqa: E402

pytestmark = pytest.mark.blender
F = {n: i for i, n in enumerate(FEATURE_NAMES)}
TABLE = load_expression_table()


def peak(expr: str) -> dict[str, float]:
    aus = TABLE["action_units"]
    return {aus[a]: hi for a, (lo, hi) in TABLE["expressions"][expr].items()}


@pytest.fixture(scope="module", params=[c.name for c in CHARACTERS])
def rendered(request, tmp_path_factory):
    """Each character: one render and the projected landmarks per expression (at peak intensity)."""
    spec = next(c for c in CHARACTERS if c.name == request.param)
    scene = reset_scene(192)
    obj = build_character(spec)
    place_camera(scene, View())
    out = tmp_path_factory.mktemp(spec.name)
    res = {"obj_keys": [k.name for k in obj.data.shape_keys.key_blocks], "landmarks": dict(obj["deepexpr_landmarks"])}
    for expr in TABLE["expressions"]:
        set_expression(obj, peak(expr))
        path = str(out / f"{expr}.png")
        render(scene, path)
        res[expr] = (cv2.imread(path), project_landmarks(scene, obj))
    return res


def test_character_has_all_shape_keys_and_landmarks(rendered):
    assert rendered["obj_keys"] == ["Basis", *AU_SHAPE_KEYS]
    assert set(rendered["landmarks"]) == set(SEMANTIC_NAMES)


def test_every_expression_renders_and_differs_from_neutral(rendered):
    neutral = rendered["neutral"][0].astype(float)
    assert neutral.std() > 10  # not a blank frame
    for expr in TABLE["expressions"]:
        img = rendered[expr][0]
        assert img.shape == (192, 192, 3) and img.std() > 10
        if expr != "neutral":
            changed = (np.abs(img.astype(float) - neutral).max(axis=2) > 30).mean()
            assert changed > 0.005, f"{expr} looks like neutral ({changed:.4f} of pixels changed)"


def test_landmarks_move_the_right_way(rendered):
    geo = {e: geometric_features(rendered[e][1]) for e in TABLE["expressions"]}
    n = geo["neutral"]
    pts = {e: rendered[e][1] for e in TABLE["expressions"]}
    i = SEMANTIC_NAMES.index
    corners = lambda p: (p[i("mouth_l"), 1] + p[i("mouth_r"), 1]) / 2  # noqa: E731
    assert corners(pts["joy"]) < corners(pts["neutral"]) - 2  # joy raises the mouth corners (image y is down)
    assert geo["joy"][F["mouth_corner_lift"]] > n[F["mouth_corner_lift"]] + 0.05
    assert geo["surprise"][F["mouth_opening"]] > n[F["mouth_opening"]] + 0.1  # surprise opens the mouth...
    assert geo["surprise"][F["jaw_drop"]] > n[F["jaw_drop"]] + 0.05  # ... drops the jaw ...
    assert geo["surprise"][F["inner_brow_height"]] > n[F["inner_brow_height"]] + 0.05  # ... and raises the brows
    assert geo["surprise"][F["eye_openness"]] > n[F["eye_openness"]]
    assert geo["anger"][F["inner_brow_height"]] < n[F["inner_brow_height"]] - 0.05  # anger lowers the brows
    assert geo["anger"][F["brow_gap"]] < n[F["brow_gap"]]  # and draws them together
    assert geo["sadness"][F["mouth_corner_lift"]] < n[F["mouth_corner_lift"]] - 0.03


def test_renderer_is_deterministic_and_resumable(tmp_path):
    from training.render_characters import render_dataset

    a = render_dataset(
        str(tmp_path / "a"), 1, seed=3, characters=["zee"], size=96, expressions=["joy", "fear"], progress=False
    )
    assert a["rendered"] == 2
    rows = [json.loads(l) for l in open(tmp_path / "a" / "manifest.jsonl")]
    assert {r["path"] for r in rows} == {"zee/zee_joy/zee_joy_00000.png", "zee/zee_fear/zee_fear_00000.png"}
    for r in rows:
        assert set(r["landmarks"]) == set(SEMANTIC_NAMES) and r["aus"] and -15 <= r["view"]["yaw"] <= 15
    again = render_dataset(
        str(tmp_path / "a"), 1, seed=3, characters=["zee"], size=96, expressions=["joy", "fear"], progress=False
    )
    assert again["rendered"] == 0 and again["skipped"] == 2
    # Same seed elsewhere: same labels, same pixels. Another seed: other values.
    render_dataset(str(tmp_path / "b"), 1, seed=3, characters=["zee"], size=96, expressions=["joy"], progress=False)
    rel = "zee/zee_joy/zee_joy_00000.png"
    assert np.array_equal(cv2.imread(str(tmp_path / "a" / rel)), cv2.imread(str(tmp_path / "b" / rel)))
    render_dataset(str(tmp_path / "c"), 1, seed=4, characters=["zee"], size=96, expressions=["joy"], progress=False)
    rb = json.loads(open(tmp_path / "b" / "manifest.jsonl").readline())
    rc = json.loads(open(tmp_path / "c" / "manifest.jsonl").readline())
    assert rb["aus"] != rc["aus"]


@pytest.fixture(scope="module")
def small_library(tmp_path_factory):
    from training.build_library import build_builtin_library

    return build_builtin_library(
        str(tmp_path_factory.mktemp("lib") / "builtin"), per_expression=1, characters=["pip"], size=96
    )


def test_library_round_trips(small_library):
    lib = load_library(small_library)
    assert len(lib.entries) == 7
    assert {e["label"] for e in lib.entries} == set(TABLE["expressions"])
    for i, e in enumerate(lib.entries):
        assert os.path.isfile(lib.thumbnail(i))
        assert e["pose"]["type"] == "shape_keys" and e["pose"]["target"] == "pip"
        assert len(e["geometry"]) == len(FEATURE_NAMES)
        np.testing.assert_allclose(
            geometric_features(lib.semantic(i)), e["geometry"], atol=5e-3
        )  # points stored to 0.01 px
    thumbs = [e["thumbnail"] for e in lib.entries]
    before = thumbs_check(small_library, thumbs)
    assert before == thumbs_check(small_library, thumbs) and before["kind"] == "content"
    thumb = lib.thumbnail(0)
    data = open(thumb, "rb").read()
    try:
        with open(thumb, "wb") as f:  # one changed thumbnail changes the check (and so rebuilds the index)
            f.write(data[:-1] + bytes([data[-1] ^ 1]))
        assert thumbs_check(small_library, thumbs) != before
        assert not thumbs_unchanged(small_library, before, thumbs)
    finally:
        with open(thumb, "wb") as f:
            f.write(data)


@pytest.mark.parametrize(
    "damage,needle",
    [
        ("thumbnail", "thumbnail missing"),
        ("json", "bad JSON"),
        ("pose", "unknown pose type"),
        ("label", "label"),
    ],
)
def test_broken_library_is_refused_naming_the_entry(small_library, tmp_path, damage, needle):
    root = tmp_path / "broken"
    shutil.copytree(small_library, root)
    data = json.load(open(root / "library.json"))
    victim = data["entries"][3]
    if damage == "thumbnail":
        os.remove(root / victim["thumbnail"])
    elif damage == "json":
        (root / "library.json").write_text(json.dumps(data)[:-40])
    elif damage == "pose":
        victim["pose"] = {"kind": "morph_target_v9"}  # no "type": any named kind passes the core
    elif damage == "label":
        victim["label"] = "smug"
    if damage != "json":
        json.dump(data, open(root / "library.json", "w"))
    with pytest.raises(DeepExprError) as e:
        load_library(str(root))
    assert e.value.code == protocol.LIBRARY_INVALID
    assert needle in e.value.message
    if damage != "json":
        assert victim["id"] in e.value.message
