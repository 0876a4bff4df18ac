# ruff: noqa: F811  (fixtures imported from tests/blender_addon.py are parameters of the tests)
"""Issue 11, points 2 and 5: every completion, progress and error path of the add-on's background jobs ends
the job (busy cleared, the modal loop stops), says what happened in plain words, and leaves no stale state;
a backend crash is shown; "Esc cancels" only where it does; disabled buttons say why."""

from __future__ import annotations

import os
import signal

import cv2
import numpy as np
import pytest

from .blender_addon import (
    MODULE,
    addon,  # noqa: F401  (fixture)
    astronaut,
    bpy,
    drain_until,
    mod,
    reset_scene,
    small_library,  # noqa: F401  (fixture)
    strips,
    video,
    zip_path,  # noqa: F401  (fixture)
)

pytestmark = pytest.mark.blender


def _blank(tmp_path) -> str:
    path = str(tmp_path / "no_face.png")
    cv2.imwrite(path, np.full((256, 256, 3), 128, np.uint8))
    return path


def _transition(scene, frames: int = 6):
    props = scene.deepexpr
    props.seq_source, props.seq_mode, props.seq_expression = astronaut(), "EXPRESSION", "surprise"
    props.seq_frames, props.seq_method = frames, "warp"
    return mod("transitions.workflow").start_transition(scene)


def test_renaming_the_scene_while_a_transition_runs_does_not_lock_the_addon(addon):
    reset_scene()
    scene = bpy.context.scene
    job = _transition(scene)
    assert scene.deepexpr.busy and scene.deepexpr.cancellable
    scene.name = "Renamed while generating"
    assert drain_until(lambda: job.done, 300)
    assert job.error is None, job.error
    assert not scene.deepexpr.busy and scene.deepexpr.status_kind == "OK"
    assert job.strip is not None and job.strip.name in [s.name for s in strips(scene.sequence_editor)]


def test_a_failing_completion_callback_ends_the_job_with_a_message(addon, monkeypatch):
    reset_scene()
    scene = bpy.context.scene
    wf = mod("transitions.workflow")

    def broken(*args, **kwargs):
        raise RuntimeError("the strip could not be made")

    monkeypatch.setattr(wf, "add_image_strip", broken)
    job = _transition(scene)
    assert drain_until(lambda: job.done, 300)
    props = scene.deepexpr
    assert not props.busy and not props.job and not props.cancellable
    assert props.status_kind == "ERROR" and "the strip could not be made" in props.error
    assert bpy.ops.deepexpr.generate_transition.poll()  # usable again, no file reload needed
    assert not mod("jobs").ACTIVE


class _Event:
    def __init__(self, type_: str, value: str = "NOTHING"):
        self.type, self.value = type_, value


class _Context:
    """Just enough of bpy.context for the modal loop: a window manager and workspace that record calls."""

    def __init__(self):
        self.calls: list[str] = []
        ctx = self

        class _Rec:
            def __getattr__(self, name):
                return lambda *a, **k: ctx.calls.append(name)

        self.window_manager = self.workspace = _Rec()


def _modal(job):
    base = mod("operator_base")

    class Stub(base.RequestModal):
        def report(self, level, text):
            self.reported = (level, text)

    op = Stub()
    op.job, op._timer = job, object()
    return op


def test_the_modal_loop_ends_on_done_on_its_own_error_and_esc_only_where_it_cancels(addon, monkeypatch):
    reset_scene()
    scene = bpy.context.scene
    jobs = mod("jobs")

    class Slow(jobs.Job):
        title, cancellable = "Slow job", True

    class Fixed(jobs.Job):
        title, cancellable = "Fixed job", False

    ctx = _Context()
    job = Slow(scene, "working")
    op = _modal(job)
    assert op.modal(ctx, _Event("TIMER")) == {"PASS_THROUGH"}
    assert op.modal(ctx, _Event("ESC", "PRESS")) == {"RUNNING_MODAL"} and job.cancel_sent_at is not None
    monkeypatch.setattr(mod("operator_base"), "CANCEL_GRACE", 0.0)  # the backend never confirms
    assert op.modal(ctx, _Event("TIMER")) == {"FINISHED"}
    assert job.done and job.cancelled and not scene.deepexpr.busy and "event_timer_remove" in ctx.calls

    job = Fixed(scene, "working")
    op = _modal(job)
    op.modal(ctx, _Event("ESC", "PRESS"))
    assert job.cancel_sent_at is None and not job.done  # Esc does not pretend to cancel what it cannot
    monkeypatch.setattr(op, "_show", lambda context: 1 / 0)
    assert op.modal(ctx, _Event("TIMER")) == {"FINISHED"}  # its own error ends the loop and the job
    assert job.done and "ZeroDivisionError" in scene.deepexpr.error and not scene.deepexpr.busy


def test_a_no_face_capture_clears_the_old_face_and_says_what_to_do(addon, tmp_path):
    reset_scene()
    props = bpy.context.scene.deepexpr
    props.source, props.image_path = "IMAGE", astronaut()
    mod("capture.workflow").capture(bpy.context.scene)
    assert drain_until(lambda: not props.busy)
    assert props.expression and props.preview_path and props.status_kind == "OK" and not props.error
    props.image_path = _blank(tmp_path)
    job = mod("capture.workflow").capture(bpy.context.scene)
    assert drain_until(lambda: job.done)
    assert not props.busy and props.status_kind == "ERROR"
    assert props.expression == "" and props.preview_path == "" and props.captured_path == ""
    assert "No face was found" in props.error and "NO_FACE" not in props.error
    with pytest.raises(RuntimeError, match="Capture a face first"):
        bpy.ops.deepexpr.find_poses()  # disabled, and it says why
    props.image_path = astronaut()
    job = mod("capture.workflow").capture(bpy.context.scene)
    assert drain_until(lambda: job.done)
    assert props.status_kind == "OK" and props.error == "" and props.expression  # the old error is gone


def test_a_frame_rate_mismatch_is_refused_before_anything_changes(addon, tmp_path):
    import skimage.data

    reset_scene()
    scene = bpy.context.scene
    clip = video(str(tmp_path / "clip30.avi"), [skimage.data.astronaut()] * 4, fps=30)
    sed = scene.sequence_editor_create()
    sed.active_strip = strips(sed).new_movie(name="clip30", filepath=clip, channel=1, frame_start=1)
    scene.frame_set(2)
    props = scene.deepexpr
    props.source, props.status = "STRIP", "Earlier status"
    with pytest.raises(RuntimeError, match="30 fps and the scene at 24 fps"):
        bpy.ops.deepexpr.capture()
    assert not props.busy and props.status == "Earlier status"  # no "Capturing..." left behind


def test_a_backend_crash_is_shown_and_ends_the_running_job(addon, tmp_path):
    import skimage.data

    reset_scene()
    connection, backend = mod("session.connection"), mod("status").backend
    assert bpy.ops.deepexpr.check_backend() == {"FINISHED"}
    assert drain_until(lambda: backend["info"] is not None, 120), backend
    assert backend["text"].startswith("Backend ready") and backend["error"] is None
    scene = bpy.context.scene
    bpy.ops.deepexpr.add_character(character="pip")
    props = scene.deepexpr
    props.batch_input = video(str(tmp_path / "long.avi"), [skimage.data.astronaut()] * 200)
    props.batch_step = 1
    job = mod("batch.workflow").start_batch(scene)
    assert drain_until(lambda: len(job.samples) >= 1, 120)
    os.kill(connection.get_client().proc.pid, signal.SIGKILL)
    assert drain_until(lambda: job.done, 30)
    assert not props.busy and props.status_kind == "ERROR"
    assert "backend is not running" in props.error and "restarts by itself" in props.error
    assert backend["text"] == "Backend stopped" and "restarts by itself" in backend["error"]
    connection.get_client().call("classify", {"image": astronaut()})  # the next action restarts it
    assert drain_until(lambda: backend["text"].startswith("Backend ready"), 30)


def test_esc_cancels_is_shown_only_for_jobs_that_cancel(addon):
    reset_scene()
    scene = bpy.context.scene
    panels = mod("sidebar.panels")

    def status_texts() -> list[str]:
        texts: list[str] = []

        class Layout:
            def __getattr__(self, name):
                def call(*args, **kwargs):
                    if "text" in kwargs:
                        texts.append(kwargs["text"])
                    return Layout()

                return call

        panels.draw_status(Layout(), bpy.context)
        return texts

    capture = mod("capture.workflow").CaptureJob(scene, "Finding the face...")
    assert not any("Esc" in t for t in status_texts())
    capture.finish("done")
    transition = mod("transitions.workflow").TransitionJob(scene, 1)
    transition.progress(3, 6, "Transition: frame 3 of 6")
    assert any("Esc cancels" in t for t in status_texts())
    transition.finish("done")
    assert not scene.deepexpr.busy


@pytest.mark.parametrize(
    "op,setup,why",
    [
        ("find_poses", lambda p: None, "Capture a face first"),
        ("key_pose", lambda p: None, "Pick a Target first"),
        ("batch_retrieve", lambda p: None, "Pick a Target first"),
        ("generate_transition", lambda p: None, "Choose a Source face"),
        ("build_library", lambda p: None, "Select the rig first"),
        ("capture", lambda p: setattr(p, "busy", True), "DeepExpr is busy"),
    ],
)
def test_disabled_buttons_say_why(addon, op, setup, why):
    reset_scene()
    props = bpy.context.scene.deepexpr
    props.source, props.image_path = "IMAGE", astronaut()
    setup(props)
    with pytest.raises(RuntimeError, match=why):
        getattr(bpy.ops.deepexpr, op)()
    props.busy = False


def test_batch_without_input_says_where_to_set_it(addon):
    reset_scene()
    bpy.ops.deepexpr.add_character(character="pip")
    with pytest.raises(RuntimeError, match="Choose an Input"):
        bpy.ops.deepexpr.batch_retrieve()


def test_registering_twice_keeps_handlers_single(addon):
    import addon_utils

    for _ in range(2):
        addon_utils.disable(MODULE)
        addon_utils.enable(MODULE, default_set=True)
    names = [h.__name__ for h in bpy.app.handlers.load_pre + bpy.app.handlers.save_pre]
    for name in ("_on_load_pre", "_on_save_pre", "_on_load", "_end_live_on_load"):
        assert names.count(name) == 1, (name, names)
