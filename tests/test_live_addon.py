"""Live mode and sparse keys in real headless Blender (bpy 5.0.1) against the real backend subprocess, driven by
a test performance made from the sample face with the warp tool. Timers never fire in bpy module mode: the
tests drain the client's queue themselves, as Blender's timer would."""

from __future__ import annotations

import os
import signal
import sys
import time
from importlib import import_module

import cv2
import numpy as np
import pytest

bpy = pytest.importorskip("bpy", reason="bpy (Blender as a Python module) is not installed")

from .test_extension import MODULE, zip_path  # noqa: E402, F401  (the packaged extension)

pytestmark = pytest.mark.blender

# joy (the photo's own smile) -> surprise -> joy: held expressions with eased transitions
PLAN = (("joy", 20, 0.0), ("surprise", 30, 2.2), ("joy", 20, 0.0))


def _mod(name: str):
    return import_module(f"{MODULE}.{name}")


def _drain_until(cond, timeout=60.0) -> bool:
    connection = _mod("session.connection")
    deadline = time.time() + timeout
    while time.time() < deadline:
        connection.drain()
        if cond():
            return True
        time.sleep(0.01)
    return False


@pytest.fixture(scope="module")
def take(tmp_path_factory):
    from backend.engine import Engine, EngineConfig
    from backend.performance import performance_frames, write_video

    frames, holds = performance_frames(Engine(EngineConfig(device="cpu")), plan=PLAN, motion=10)
    folder = tmp_path_factory.mktemp("live")
    path = write_video(str(folder / "take.avi"), frames, 25)
    data = open(path, "rb").read()
    cut = str(folder / "cut.avi")  # the camera unplugged half way
    with open(cut, "wb") as f:
        f.write(data[: len(data) // 2])
    return {"path": path, "holds": holds, "frames": len(frames), "cut": cut}


@pytest.fixture(scope="module")
def live_addon(zip_path):  # noqa: F811
    import addon_utils

    saved = os.environ.pop("DEEPEXPR_EXPRESSION_MODEL", None)  # the shipped networks
    bpy.ops.wm.read_factory_settings(use_empty=True)
    res = bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default", enable_on_install=True)
    assert res == {"FINISHED"}
    addon_utils.enable(MODULE, default_set=True)
    bpy.context.preferences.addons[MODULE].preferences.python = sys.executable
    bpy.context.preferences.addons[MODULE].preferences.device = "cpu"
    _mod("session.connection").stop()  # a backend left by other tests may run other networks
    _mod("session.connection").start()
    yield import_module(MODULE)
    _mod("live.workflow").stop_all("tests done")
    _mod("session.connection").stop()
    addon_utils.disable(MODULE)
    if saved is not None:
        os.environ["DEEPEXPR_EXPRESSION_MODEL"] = saved


@pytest.fixture
def scene(live_addon):
    sc = bpy.context.scene
    if sc.deepexpr.target is None:
        assert bpy.ops.deepexpr.add_character(character="pip") == {"FINISHED"}
    target = sc.deepexpr.target
    keys = target.data.shape_keys
    if keys.animation_data is not None:
        keys.animation_data_clear()
    for kb in keys.key_blocks[1:]:
        kb.value = 0.0
    sc.deepexpr.library = "BUILTIN"
    sc.deepexpr_live.error = sc.deepexpr_live.status = ""
    sc.frame_set(1)
    return sc


def _fcurves(target) -> list:
    """The target's shape-key F-curves, on any supported Blender (the add-on's compat room)."""
    return _mod("compat").action_fcurves(target.data.shape_keys)


def _keyed_frames(target) -> list[float]:
    return sorted({k.co.x for fc in _fcurves(target) for k in fc.keyframe_points})


def _values(target) -> dict[str, float]:
    return {kb.name: kb.value for kb in target.data.shape_keys.key_blocks[1:]}


def test_live_applies_the_pose_and_shows_the_camera(scene, take):
    wf = _mod("live.workflow")
    lp = scene.deepexpr_live
    lp.source, lp.video = "VIDEO", take["path"]
    lp.min_hold, lp.blend = 0.2, 0.1
    sess = wf.start_live(scene)
    seen = set()
    assert _drain_until(lambda: seen.add(lp.pose_id) or not sess.running, 60), lp.status
    assert sess.results > take["frames"] / 4 and "end of video" in lp.status, lp.status
    assert not lp.running and wf.session(scene) is None
    labels = {sess.entries[p]["label"] for p in seen if p}
    assert "joy" in labels and labels & {"surprise", "fear"}, labels  # the character followed the performance
    # the target wears the last pose (its blend long finished)
    pose = sess.entries[lp.pose_id]["pose"]
    got = _values(scene.deepexpr.target)
    assert all(abs(got[k] - v) < 1e-4 for k, v in pose["values"].items())
    assert _keyed_frames(scene.deepexpr.target) == []  # applied, not keyed
    assert len(lp.candidates) == scene.deepexpr.top_k and lp.candidates[0].thumbnail
    img = bpy.data.images[wf.LIVE_IMAGE]
    assert tuple(img.size) == (320, 240)
    assert lp.rate > 2 and 0 < lp.latency < 2000


def test_candidates_update_in_place_without_flicker(scene, take):
    wf = _mod("live.workflow")
    lp = scene.deepexpr_live
    lp.source, lp.video = "VIDEO", take["path"]
    sess = wf.start_live(scene)
    rebuilds, last, scores = 0, None, set()
    while sess.running:
        _drain_until(lambda: True, 0.02)
        ids = tuple(c.pose_id for c in lp.candidates)
        if ids and ids != last:
            rebuilds += 1
        last = ids or last
        scores.add(tuple(round(c.score, 6) for c in lp.candidates))
    assert sess.results > 20
    # rows move only when the top-k poses change (at most every 0.5 s); their scores follow every result
    assert rebuilds <= 2 + (time.monotonic() - sess.started) / 0.5
    assert len(scores) > rebuilds


def test_record_keys_pose_changes_with_smoothing_and_keeps_the_take(scene, take):
    wf = _mod("live.workflow")
    lp = scene.deepexpr_live
    lp.source, lp.video = "VIDEO", take["path"]
    lp.min_hold, lp.blend = 0.2, 0.12
    scene.frame_set(100)
    sess = wf.start_live(scene)
    assert _drain_until(lambda: sess.results >= 3, 30)
    assert wf.toggle_record(scene) is True and lp.recording
    assert _drain_until(lambda: not sess.running, 60)
    assert not lp.recording and lp.keys_recorded == len(sess.rec_keys) >= 3
    frames = _keyed_frames(scene.deepexpr.target)
    assert frames[0] == 100 and frames == sorted(set(frames))
    assert frames[-1] - 100 >= 0.6 * take["frames"]  # real-time clock: about one scene frame per video frame
    ids = [p for _, p in sess.rec_keys]
    assert len(set(ids)) >= 2  # the change of expression was recorded
    # each change keyed twice: the old pose where it starts, the new one where the blend ends
    blend = max(1, round(lp.blend * scene.render.fps))
    changes = [i for i in range(1, len(ids)) if ids[i] != ids[i - 1]]
    for i in changes:
        assert sess.rec_keys[i][0] - sess.rec_keys[i - 1][0] in (blend, blend + 1)
    assert len(wf._takes[scene.name]["take"]) > 10


def test_sparse_keys_from_the_last_take(scene, take):
    wf = _mod("live.workflow")
    lp = scene.deepexpr_live
    assert wf._takes.get(scene.name), "run after the recording test"
    lp.sparse_source, lp.density = "TAKE", 0.5
    job = wf.start_sparse(scene)
    assert _drain_until(lambda: job.done, 60) and job.error is None, job.error
    assert 2 <= len(job.keyed) <= len(wf._takes[scene.name]["take"]) / 3
    assert "keys for" in lp.sparse_report


def test_sparse_keys_from_a_video_key_the_held_poses(scene, take):
    wf = _mod("live.workflow")
    lp = scene.deepexpr_live
    lp.sparse_source, lp.sparse_video, lp.density, lp.breakdowns = "VIDEO", take["path"], 0.5, 0
    scene.frame_set(1)
    job = wf.start_sparse(scene)
    assert _drain_until(lambda: job.done, 120) and job.error is None, job.error
    res = job.result
    main = [k for k in res["keys"] if k["kind"] == "key"]
    assert len(main) == len(take["holds"])
    for k, h in zip(main, take["holds"]):
        assert abs(k["frame"] - 1 - h.start) <= 3, (k, h)  # video frame 0 at scene frame 1
    frames = _keyed_frames(scene.deepexpr.target)
    assert frames == sorted({float(k["frame"]) for k in res["keys"]})  # only the key poses
    assert len(frames) * 3 <= take["frames"]
    kps = [kp for fc in _fcurves(scene.deepexpr.target) for kp in fc.keyframe_points]
    assert {kp.interpolation for kp in kps} == {"BEZIER"} and {kp.handle_left_type for kp in kps} == {"AUTO_CLAMPED"}
    assert f"{res['report']['dense_keys']} frames" in lp.sparse_report and "distance" in lp.sparse_report


def test_stop_and_esc_end_live_mode(scene, take, astronaut_path):
    wf = _mod("live.workflow")
    ops = _mod("live.ops")
    lp = scene.deepexpr_live
    lp.source, lp.video = "VIDEO", take["path"]
    # Esc: the Live operator's modal handler ends live mode
    sess = wf.start_live(scene)
    assert _drain_until(lambda: sess.results >= 3, 30)

    class Event:
        type, value = "ESC", "PRESS"

    class Op:  # the operator's state, as Blender would hold it
        _timer = None

        def report(self, *_):
            pass

        finish = ops.DEEPEXPR_OT_live.finish

    assert ops.DEEPEXPR_OT_live.modal(Op(), bpy.context, Event()) == {"FINISHED"}
    assert wf.session(scene) is None and not lp.running and lp.status.startswith("Live ended (Esc)")
    n = sess.results
    _drain_until(lambda: False, 1.0)  # the backend's CANCELLED answer arrives and changes nothing
    assert sess.results == n and not lp.error
    # Stop
    sess = wf.start_live(scene)
    assert _drain_until(lambda: sess.results >= 3, 30)
    assert bpy.ops.deepexpr.live_stop() == {"FINISHED"}
    assert wf.session(scene) is None and lp.status.startswith("Live stopped")
    client = _mod("session.connection").get_client()
    assert client.call("detect", {"image": astronaut_path})["faces_found"] == 1  # the backend serves on


def test_backend_death_mid_stream_keeps_the_keys(scene, take):
    wf = _mod("live.workflow")
    lp = scene.deepexpr_live
    lp.source, lp.video = "VIDEO", take["path"]
    lp.min_hold = 0.0
    sess = wf.start_live(scene)
    assert _drain_until(lambda: sess.results >= 3, 30)
    wf.toggle_record(scene)
    assert _drain_until(lambda: sess.results >= 15, 30)
    keyed = len(sess.rec_keys)
    assert keyed >= 1
    os.kill(_mod("session.connection").get_client().proc.pid, signal.SIGKILL)
    assert _drain_until(lambda: not sess.running, 20)
    assert "backend stopped" in lp.error and "kept" in lp.error, lp.error
    assert not lp.running and not lp.recording
    assert len(_keyed_frames(scene.deepexpr.target)) >= keyed
    assert bpy.ops.mesh.primitive_cube_add() == {"FINISHED"}  # Blender keeps working


@pytest.mark.parametrize("case", ["no camera", "missing file", "cut", "no frames"])
def test_camera_errors_show_a_clear_message(scene, take, case, tmp_path):
    wf = _mod("live.workflow")
    lp = scene.deepexpr_live
    if case == "no camera":
        lp.source, lp.webcam_index = "WEBCAM", 15
    elif case == "missing file":
        lp.source, lp.video = "VIDEO", str(tmp_path / "absent.avi")
        with pytest.raises(_mod("errors").CaptureError, match="video file"):
            wf.start_live(scene)
        assert wf.session(scene) is None
        return
    elif case == "no frames":
        path = str(tmp_path / "empty.avi")
        cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), 25, (64, 48)).release()
        lp.source, lp.video = "VIDEO", path
    else:
        lp.source, lp.video = "VIDEO", take["cut"]
    sess = wf.start_live(scene)
    if case == "cut":
        assert _drain_until(lambda: sess.results >= 3, 30)
        wf.toggle_record(scene)
    assert _drain_until(lambda: not sess.running, 60)
    expect = {"no camera": "webcam 15 does not exist", "no frames": "no frames", "cut": "stopped at frame"}[case]
    assert expect in lp.error and not lp.running, lp.error
    if case == "cut":
        assert sess.rec_keys and "kept" in lp.error
        assert len(_keyed_frames(scene.deepexpr.target)) >= 1


def test_the_live_panels_draw(scene):
    from .test_extension import _Layout

    ui = _mod("live.ui")
    for source in ("WEBCAM", "VIDEO"):
        scene.deepexpr_live.source = source
        for draw in (ui.draw_live, ui.draw_sparse):
            log: list[str] = []
            draw(_Layout(log), scene)
            assert "operator" in log
    assert np.isfinite(scene.deepexpr_live.latency)


def test_loading_another_file_ends_live_mode(scene, take):
    """(Last: it loads a new file.)"""
    wf = _mod("live.workflow")
    lp = scene.deepexpr_live
    lp.source, lp.video = "VIDEO", take["path"]
    sess = wf.start_live(scene)
    assert _drain_until(lambda: sess.results >= 3, 30)
    bpy.ops.wm.read_homefile(use_empty=True)
    assert not sess.running and wf.session(bpy.context.scene) is None and not wf._takes
    _drain_until(lambda: False, 0.5)  # late answers of the old session go nowhere
    client = _mod("session.connection").get_client()
    assert not client.busy
