"""The Blender extension in real headless Blender (bpy 5.0.1) against the real backend subprocess:
packaging, registration, backend supervision, capture, find poses and key one, batch retrieval, panels."""

# ruff: noqa: F811  (fixtures imported from tests/blender_addon.py are parameters of the tests)
from __future__ import annotations

import ast
import json
import os
import signal
import sys

import cv2
import numpy as np
import pytest

bpy = pytest.importorskip("bpy", reason="bpy (Blender as a Python module) is not installed")

from .blender_addon import (  # noqa: E402
    BACKEND_PYTHON,
    MODULE,
    addon,  # noqa: F401  (fixture)
    astronaut,
    drain_until,
    fcurves,
    key_frames,
    small_library,  # noqa: F401  (fixture)
    strips,
    video,
    zip_path,  # noqa: F401  (fixture)
)
from .conftest import ROOT  # noqa: E402

pytestmark = pytest.mark.blender
ALLOWED = {"bpy", "bpy_extras", "mathutils", "bmesh", "numpy", "addon_utils", "gpu", "blf"}


def test_addon_imports_only_what_blender_bundles():
    bad = []
    for dirpath, _, files in os.walk(os.path.join(ROOT, "deepexpr_blender")):
        for f in files:
            if not f.endswith(".py"):
                continue
            tree = ast.parse(open(os.path.join(dirpath, f), encoding="utf-8").read())
            for node in ast.walk(tree):
                names = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0:
                    names = [node.module]
                for n in names:
                    top = n.split(".")[0]
                    if top not in sys.stdlib_module_names and top not in ALLOWED:
                        bad.append(f"{f}: {n}")
    assert not bad, bad


def test_register_unregister_twice(addon):
    import addon_utils

    for _ in range(2):
        addon_utils.disable(MODULE)
        assert not hasattr(bpy.types.Scene, "deepexpr")
        addon_utils.enable(MODULE, default_set=True)
        assert hasattr(bpy.types.Scene, "deepexpr") and hasattr(bpy.ops.deepexpr, "find_poses")
    bpy.context.preferences.addons[MODULE].preferences.python = BACKEND_PYTHON


def test_backend_starts_answers_and_restarts_after_kill(addon):
    from importlib import import_module

    connection = import_module(MODULE + ".session.connection")
    backend = import_module(MODULE + ".status").backend
    assert bpy.ops.deepexpr.check_backend() == {"FINISHED"}
    assert drain_until(lambda: backend["info"] is not None or backend["error"])
    assert backend["error"] is None, backend
    assert backend["info"]["protocol_version"] == import_module(MODULE + ".core.protocol").PROTOCOL_VERSION
    client = connection.get_client()
    first = client.proc.pid
    os.kill(first, signal.SIGKILL)
    drain_until(lambda: not client.alive, 10)
    assert client.call("detect", {"image": astronaut()})["faces_found"] == 1  # restarted on the next request
    assert client.proc.pid != first


def test_capture_find_and_key_a_pose(addon, small_library, tmp_path):
    import skimage.data

    bpy.ops.wm.read_factory_settings(use_empty=True)
    import addon_utils

    addon_utils.enable(MODULE, default_set=True)
    bpy.context.preferences.addons[MODULE].preferences.python = BACKEND_PYTHON
    scene = bpy.context.scene
    # Source: the frame under the playhead of a movie strip made from a generated video.
    # Distinct frames (the face shifted a little more each frame) to check the strip-to-source frame mapping.
    face = skimage.data.astronaut()
    frames = [np.roll(face, 6 * i, axis=1) for i in range(6)]
    clip = video(str(tmp_path / "clip.avi"), frames)
    sed = scene.sequence_editor_create()
    strip = strips(sed).new_movie(name="clip", filepath=clip, channel=1, frame_start=1)
    sed.active_strip = strip
    scene.frame_set(3)
    props = scene.deepexpr
    props.source = "STRIP"
    assert bpy.ops.deepexpr.capture() == {"FINISHED"}
    assert drain_until(lambda: not props.busy)
    assert props.expression in ("anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise"), props.status
    assert os.path.isfile(props.captured_path) and os.path.isfile(props.preview_path)
    got = cv2.cvtColor(cv2.imread(props.captured_path), cv2.COLOR_BGR2RGB).astype(float)
    diffs = [np.abs(got - f).mean() for f in frames]
    assert int(np.argmin(diffs)) == 2  # playhead at scene frame 3 of a strip starting at 1: source frame 2
    assert tuple(bpy.data.images["DeepExpr Capture"].size) == (512, 512)
    # Find poses in a library of the toon character "pip", and key the first on a pip added to the scene.
    assert bpy.ops.deepexpr.add_character(character="pip") == {"FINISHED"}
    target = props.target
    assert target is not None and target.data.shape_keys
    props.library, props.library_path, props.top_k = "CUSTOM", small_library, 4
    assert bpy.ops.deepexpr.find_poses() == {"FINISHED"}
    assert drain_until(lambda: not props.busy)
    assert len(props.candidates) == 4, props.status
    assert [c.score for c in props.candidates] == sorted(c.score for c in props.candidates)
    scene.frame_set(10)
    assert bpy.ops.deepexpr.key_pose(index=0) == {"FINISHED"}
    pose = json.loads(props.candidates[0].pose_json)
    keyed = fcurves(target.data.shape_keys)
    for name, value in pose["values"].items():
        fc = keyed[f'key_blocks["{name}"].value']
        assert [tuple(k.co) for k in fc.keyframe_points] == [pytest.approx((10.0, value), abs=1e-4)]


def test_batch_retrieval_over_a_video_keys_smoothed_poses(addon, small_library, tmp_path):
    import skimage.data

    scene = bpy.context.scene
    props = scene.deepexpr
    if props.target is None:
        bpy.ops.deepexpr.add_character(character="pip")
    face = skimage.data.astronaut()
    blank = np.full_like(face, 128)
    frames = [face] * 8 + [blank] * 4 + [cv2.flip(face, 1)] * 6
    props.batch_input = video(str(tmp_path / "batch.avi"), frames)
    props.batch_step, props.batch_min_hold = 2, 6
    props.library, props.library_path = "CUSTOM", small_library
    scene.frame_set(1)
    from importlib import import_module

    wf = import_module(MODULE + ".batch.workflow")
    run = wf.start_batch(scene)
    assert drain_until(lambda: run.done, 300)
    assert run.error is None and not run.cancelled
    assert len(run.samples) == 9 and run.no_face == [9, 11]  # video frames 8 and 10 (step 2) are blank
    assert "no face at frames 9, 11" in props.batch_report
    from deepexpr_blender.core.smoothing import smooth

    segs = smooth(run.samples, props.batch_min_hold, props.batch_hysteresis)
    # The pose keyed by hand at frame 10 (the test above) is inside the batch's range: replaced.
    frames_keyed = key_frames(props.target.data.shape_keys)
    expected = sorted({float(s.start) for s in segs} | {float(s.start - 1) for s in segs[1:]})
    assert frames_keyed == expected
    raw = [min(c, key=lambda x: x[1])[0] for _, c in run.samples if c]
    assert len(segs) <= len(set(raw))


def test_batch_over_an_image_folder_keys_every_step(addon, small_library, tmp_path):
    import skimage.data

    scene = bpy.context.scene
    props = scene.deepexpr
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(6):
        cv2.imwrite(str(folder / f"f{i:03d}.png"), cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR))
    props.batch_input, props.batch_step = str(folder), 2
    props.library, props.library_path = "CUSTOM", small_library
    scene.frame_set(40)
    from importlib import import_module

    run = import_module(MODULE + ".batch.workflow").start_batch(scene)
    assert drain_until(lambda: run.done, 300)
    assert [f for f, _ in run.samples] == [40, 42, 44]  # one image per frame, every 2nd sampled


def test_cancel_keeps_what_was_keyed(addon, small_library, tmp_path):
    import skimage.data

    scene = bpy.context.scene
    props = scene.deepexpr
    props.batch_input = video(str(tmp_path / "long.avi"), [skimage.data.astronaut()] * 80)
    props.batch_step = 1
    from importlib import import_module

    wf = import_module(MODULE + ".batch.workflow")
    connection = import_module(MODULE + ".session.connection")
    run = wf.start_batch(scene)
    assert drain_until(lambda: len(run.samples) >= 2, 120)
    connection.get_client().cancel(run.request_id)
    assert drain_until(lambda: run.done, 120)
    assert run.cancelled and 2 <= len(run.samples) < 80
    assert run.keyed_starts and "cancelled" in props.batch_report


def test_generate_transition_lands_as_an_image_strip(addon, tmp_path):
    from importlib import import_module

    scene = bpy.context.scene
    props = scene.deepexpr
    props.seq_source, props.seq_mode, props.seq_expression = astronaut(), "EXPRESSION", "surprise"
    props.seq_frames, props.seq_method, props.seq_easing = 8, "warp", "ease_in_out"
    sed = scene.sequence_editor_create()
    blocker = strips(sed).new_image(name="existing", filepath=astronaut(), channel=1, frame_start=20)
    blocker.frame_final_duration = 30
    scene.frame_set(25)
    wf = import_module(MODULE + ".transitions.workflow")
    job = wf.start_transition(scene)
    assert drain_until(lambda: job.done, 300)
    assert job.error is None, job
    strip = job.strip
    assert strip.type == "IMAGE" and strip.frame_final_start == 25 and strip.frame_final_end == 33
    assert strip.channel == 2  # channel 1 is taken over those frames
    assert len(strip.elements) == 8
    folder = bpy.path.abspath(strip.directory)
    assert all(os.path.isfile(os.path.join(folder, e.filename)) for e in strip.elements)


def test_build_library_from_the_active_rig(addon):
    """The operator turns the toon character's own expression keys into a labelled library and selects it; the
    keyed frames on its timeline (an animation) are not taken for poses unless asked for."""
    scene = bpy.context.scene
    bpy.ops.deepexpr.add_character(character="zee")
    obj = scene.deepexpr.target
    keys = obj.data.shape_keys.key_blocks
    for frame, (name, value) in enumerate((("lip_corner_pull", 1.0), ("jaw_drop", 1.0), ("brow_lower", 1.0))):
        for kb in keys[1:]:
            kb.value = value if kb.name == name else 0.0
            kb.keyframe_insert("value", frame=frame * 10 + 1)
    bpy.context.view_layer.objects.active = obj
    assert bpy.ops.deepexpr.build_library() == {"FINISHED"}
    props = scene.deepexpr
    assert props.library == "CUSTOM" and os.path.isfile(os.path.join(props.library_path, "library.json"))
    data = json.load(open(os.path.join(props.library_path, "library.json")))
    assert len(data["entries"]) == 19 and {e["source"] for e in data["entries"]} == {"deepexpr"}
    labels = {"anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise"}
    assert {e["label"] for e in data["entries"]} == labels
    assert all(e["landmarks"] and e["face_box"] for e in data["entries"])
    assert "deepexpr_blender" in props.library_path  # the extension's user folder, not the add-on folder
    assert bpy.ops.deepexpr.build_library(animation=True, overwrite=True) == {"FINISHED"}
    data = json.load(open(os.path.join(props.library_path, "library.json")))
    assert len(data["entries"]) == 19 + 3  # asked for: the three keyed frames too


def test_missing_backend_gives_a_clear_message(addon):
    from importlib import import_module

    backend = import_module(MODULE + ".status").backend
    prefs = bpy.context.preferences.addons[MODULE].preferences
    prefs.python = "/nonexistent/python"
    try:
        bpy.ops.deepexpr.check_backend()
        assert backend["error"] and "preferences" in backend["error"]
        props = bpy.context.scene.deepexpr
        props.source, props.image_path = "IMAGE", astronaut()
        with pytest.raises(RuntimeError, match="not found"):
            bpy.ops.deepexpr.capture()  # the operator reports the error (RuntimeError in background mode)
        assert not props.busy
        assert bpy.ops.mesh.primitive_cube_add() == {"FINISHED"}  # Blender keeps working
    finally:
        prefs.python = BACKEND_PYTHON


class _Layout:
    """Records a panel's layout calls and checks them against real RNA (props and operators must exist)."""

    def __init__(self, log):
        self.log = log

    def __getattr__(self, name):
        def call(*args, **kwargs):
            if name == "prop":
                data, prop = args[0], args[1]
                assert prop in data.bl_rna.properties, f"no property {prop} on {data}"
            if name == "operator":
                cat, op = args[0].split(".")
                assert hasattr(getattr(bpy.ops, cat), op), args[0]
            self.log.append(name)
            return _Layout(self.log)

        return call


def test_every_panel_draws(addon):
    from importlib import import_module

    rooms = import_module(MODULE + ".addon").ROOMS
    ui_types = (bpy.types.Panel, bpy.types.Menu)
    drawn = [c for room in rooms for c in getattr(room, "classes", ()) if issubclass(c, ui_types)]
    assert len(drawn) >= 10
    scene = bpy.context.scene
    props = scene.deepexpr
    c = props.candidates.add()
    c.pose_id, c.label, c.thumbnail = "x", "joy", astronaut()
    for cls in drawn:
        log: list[str] = []
        fake = type("P", (), {"layout": _Layout(log)})()
        for source in ("WEBCAM", "IMAGE", "STRIP"):
            props.source = source
            cls.draw(fake, bpy.context)
        assert log, cls.__name__
    prefs = bpy.context.preferences.addons[MODULE].preferences
    prefs.library_folders.add().path = "/tmp"

    class Wrapped:  # the preferences, with a recording layout
        layout = _Layout(log := [])

        def __getattr__(self, name):
            return getattr(prefs, name)

    type(prefs).draw(Wrapped(), bpy.context)
    assert log.count("operator") >= 3  # remove folder, add folder, check backend
