"""Build library from rig through the add-on itself (the installed extension, headless Blender): the dialog
lists the poses found, the user's edits (exclude, relabel, intensity) reach the library, a rebuild never
replaces a library without asking, and bad input is a clear message with the previous library kept."""

from __future__ import annotations

import json
import os

import pytest

bpy = pytest.importorskip("bpy", reason="bpy (Blender as a Python module) is not installed")

from .test_extension import MODULE, addon, zip_path  # noqa: E402,F401  (the installed-extension fixtures)

pytestmark = [pytest.mark.blender, pytest.mark.usefixtures("addon")]
SEVEN = {"anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise"}


def _library(props) -> dict:
    with open(os.path.join(props.library_path, "library.json"), encoding="utf-8") as f:
        return json.load(f)


def test_the_dialog_lists_the_rigs_poses_and_builds_what_the_user_kept():
    scene = bpy.context.scene
    bpy.ops.deepexpr.add_character(character="mira")
    obj = scene.deepexpr.target
    bpy.context.view_layer.objects.active = obj
    from importlib import import_module

    poses = import_module(MODULE + ".poses")
    found = poses.find_poses(obj)
    assert len(found) == 19 and {p["label"] for p in found} == SEVEN
    assert {p["kind"] for p in found} == {"au_expression"} and found[0]["name"] == "neutral"
    # the user's edits, as the dialog applies them: drop the fear poses, relabel one, change an intensity
    kept = []
    for p in found:
        if p["label"] == "fear":
            continue
        if p["name"] == "joy_050":
            kind = poses.kind_named(p["kind"])
            p = {**p, "pose": kind.scaled(p["base"], 0.3), "intensity": 0.3}
        kept.append(p)
    kept[-1] = {**kept[-1], "label": None}
    out = import_module(MODULE + ".library_from_rig.ops").library_folder(obj)
    if os.path.exists(os.path.join(out, "library.json")):
        assert bpy.ops.deepexpr.build_library(poses_json=json.dumps(kept), overwrite=True) == {"FINISHED"}
    else:
        assert bpy.ops.deepexpr.build_library(poses_json=json.dumps(kept)) == {"FINISHED"}
    data = _library(scene.deepexpr)
    entries = {e["id"].split("-", 1)[1]: e for e in data["entries"]}
    assert len(entries) == 16 and "fear_100" not in entries
    assert entries["joy_050"]["intensity"] == 0.3
    joy_full = next(p for p in found if p["name"] == "joy_100")["pose"]["values"]
    assert entries["joy_050"]["pose"]["values"]["lip_corner_pull"] == pytest.approx(
        0.3 * joy_full["lip_corner_pull"], abs=1e-4
    )
    assert data["entries"][-1]["label"] is None
    first = open(os.path.join(scene.deepexpr.library_path, "library.json")).read()
    # a rebuild without 'Replace' is refused, the library untouched
    with pytest.raises(RuntimeError, match="already holds a library"):  # operators' errors raise in bpy
        bpy.ops.deepexpr.build_library()
    assert open(os.path.join(scene.deepexpr.library_path, "library.json")).read() == first
    # the dialog operator run without a window builds everything it finds (and asks for 'Replace' too)
    with pytest.raises(RuntimeError, match="tick 'Replace'"):
        bpy.ops.deepexpr.review_rig_poses("EXEC_DEFAULT")
    assert bpy.ops.deepexpr.review_rig_poses("EXEC_DEFAULT", overwrite=True) == {"FINISHED"}
    assert len(_library(scene.deepexpr)["entries"]) == 19


def test_bad_rig_says_what_is_wrong_and_keeps_the_previous_library():
    scene = bpy.context.scene
    bpy.ops.mesh.primitive_cube_add()
    cube = bpy.context.active_object
    cube.name = "Boxy"
    assert not bpy.ops.deepexpr.review_rig_poses.poll()  # no shape keys, no armature: nothing to offer
    cube.shape_key_add(name="Basis")
    cube.shape_key_add(name="Angry")  # a key that moves nothing
    cube.shape_key_add(name="Smile")
    from importlib import import_module

    out = import_module(MODULE + ".library_from_rig.ops").library_folder(cube)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "library.json"), "w") as f:
        f.write('{"previous": true}')
    with pytest.raises(RuntimeError, match="no pose moves"):
        bpy.ops.deepexpr.build_library(overwrite=True)
    assert open(os.path.join(out, "library.json")).read() == '{"previous": true}'
    assert not os.path.exists(out + ".partial")
    assert scene.deepexpr.library_path != out


def test_capture_my_neutral_is_stored_and_sent_with_every_retrieval(tmp_path):
    from importlib import import_module

    import cv2
    import skimage.data

    from .blender_addon import drain_until as _drain_until

    image = str(tmp_path / "neutral.png")
    cv2.imwrite(image, cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR))
    props = bpy.context.scene.deepexpr
    props.source, props.image_path = "IMAGE", image
    assert bpy.ops.deepexpr.capture_neutral() == {"FINISHED"}
    assert _drain_until(lambda: not props.busy)
    points = json.loads(props.neutral_points)
    assert len(points) == 68 and props.neutral_image == image
    assert abs(sum(json.loads(props.neutral_probabilities).values()) - 1) < 1e-3
    params = import_module(MODULE + ".props").retrieval_params(props)
    assert params["neutral"]["points"] == points and set(params) >= {"alpha", "beta", "gamma"}
    client = import_module(MODULE + ".session.connection").get_client()
    res = client.call("retrieve", {"image": image, "top_k": 3, **params})
    assert res["calibrated"] is True and len(res["candidates"]) == 3
    props.use_neutral = False
    assert "neutral" not in import_module(MODULE + ".props").retrieval_params(props)
    assert bpy.ops.deepexpr.clear_neutral() == {"FINISHED"} and not props.neutral_points
