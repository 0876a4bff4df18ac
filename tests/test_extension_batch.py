# ruff: noqa: F811  (fixtures imported from tests/blender_addon.py are parameters of the tests)
"""Issue 11, point 3: batch keying that can be trusted. It replaces the keys in its frame range on the
target's channels, reports exactly what it keyed and what failed, refuses a target it cannot key before
starting, and from the Sequencer takes its input and start frame from the active movie strip."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from .blender_addon import (
    addon,  # noqa: F401  (fixture)
    bpy,
    drain_until,
    fcurves,
    key_frames,
    mod,
    reset_scene,
    small_library,  # noqa: F401  (fixture)
    strips,
    video,
    zip_path,  # noqa: F401  (fixture)
)

pytestmark = pytest.mark.blender


@pytest.fixture(scope="module")
def performance(tmp_path_factory):
    """A video of shots: the sample face, then mirrored, then shifted (different poses may win)."""
    import skimage.data

    face = skimage.data.astronaut()
    frames = [face] * 8 + [cv2.flip(face, 1)] * 8 + [np.roll(face, 40, axis=0)] * 8
    return video(str(tmp_path_factory.mktemp("perf") / "performance.avi"), frames)


def _pip(library: str):
    reset_scene()
    bpy.ops.deepexpr.add_character(character="pip")
    props = bpy.context.scene.deepexpr
    props.library, props.library_path = "CUSTOM", library
    return props.target


def _run(scene, **kwargs):
    job = mod("batch.workflow").start_batch(scene, **kwargs)
    assert drain_until(lambda: job.done, 300)
    return job


def test_a_batch_replaces_the_keys_in_its_range_and_reports_what_it_keyed(addon, small_library, performance):
    pip = _pip(small_library)
    scene = bpy.context.scene
    props = scene.deepexpr
    keys = pip.data.shape_keys.key_blocks
    for frame in (5, 20, 400):  # hand keys: two inside the batch's range (frames 1-24), one after it
        keys["jaw_drop"].value = 0.77
        keys["jaw_drop"].keyframe_insert("value", frame=frame)
    props.batch_input, props.batch_step, props.batch_min_hold = performance, 2, 2
    scene.frame_set(1)
    job = _run(scene)
    assert job.error is None and not job.failed, job.error
    starts = sorted(job.keyed_starts)
    expected = sorted({f for f, _ in job.keys})
    jaw = fcurves(pip.data.shape_keys)['key_blocks["jaw_drop"].value']
    assert [k.co.x for k in jaw.keyframe_points] == [float(f) for f in expected] + [400.0]  # 5 and 20 replaced
    assert all(abs(k.co.y - 0.77) > 1e-6 for k in jaw.keyframe_points[:-1])
    poses = f"{len(starts)} pose{'s' if len(starts) > 1 else ''}"
    assert f"{poses} keyed on {pip.name} at frames {', '.join(map(str, starts))}" in props.batch_report
    assert props.status_kind == "OK"

    # A second run with another hold leaves none of the first run's keys in the range.
    props.batch_min_hold = 12
    second = _run(scene)
    assert key_frames(pip.data.shape_keys) == sorted({float(f) for f, _ in second.keys} | {400.0})
    assert len(second.keyed_starts) <= len(starts)


def test_the_default_cube_is_refused_before_anything_starts(addon, performance):
    reset_scene()
    bpy.ops.mesh.primitive_cube_add()
    scene = bpy.context.scene
    props = scene.deepexpr
    props.target, props.batch_input = bpy.context.active_object, performance
    with pytest.raises(RuntimeError, match="Cube cannot be keyed"):
        bpy.ops.deepexpr.batch_retrieve()  # the button is disabled and says why
    with pytest.raises(mod("errors").KeyingError, match="Cube cannot be keyed"):
        mod("batch.workflow").start_batch(scene)
    assert not props.busy and props.target.animation_data is None


def test_a_mesh_without_the_librarys_shape_keys_is_refused_up_front_or_before_its_first_key(
    addon, small_library, performance
):
    reset_scene()
    bpy.ops.mesh.primitive_uv_sphere_add()
    sphere = bpy.context.active_object
    sphere.shape_key_add(name="Basis")
    sphere.shape_key_add(name="Blink")
    scene = bpy.context.scene
    props = scene.deepexpr
    props.target, props.batch_input = sphere, performance
    props.library, props.library_path = "CUSTOM", small_library
    with pytest.raises(mod("errors").KeyingError, match="none of this pose's shape keys"):
        mod("batch.workflow").start_batch(scene)  # the library is known: refused before the request
    props.library = "BUILTIN"
    mod("status").backend.pop("builtin_library", None)  # the built-in library's path is not known yet
    job = _run(scene)
    assert job.error and "none of this pose's shape keys" in props.error and props.status_kind == "ERROR"
    assert sphere.data.shape_keys.animation_data is None  # nothing was keyed


def test_nothing_keyed_is_reported_as_a_failure(addon, small_library, tmp_path):
    pip = _pip(small_library)
    scene = bpy.context.scene
    props = scene.deepexpr
    props.batch_input = video(str(tmp_path / "blank.avi"), [np.full((200, 200, 3), 128, np.uint8)] * 6)
    props.batch_step = 2
    job = _run(scene)
    assert props.status_kind == "ERROR" and "no face in any sampled frame" in props.error
    assert "0 poses keyed" in props.batch_report and pip.data.shape_keys.animation_data is None
    assert job.done and not props.busy


def test_from_the_sequencer_the_active_movie_strip_gives_input_start_and_range(addon, small_library, performance):
    pip = _pip(small_library)
    scene = bpy.context.scene
    sed = scene.sequence_editor_create()
    strip = strips(sed).new_movie(name="performance", filepath=performance, channel=1, frame_start=30)
    strip.frame_offset_start = 4  # trimmed: the strip shows video frames 4..23 at scene frames 34..53
    sed.active_strip = strip
    props = scene.deepexpr
    props.batch_input, props.batch_step, props.batch_min_hold = "", 2, 2
    scene.frame_set(1)  # the playhead is elsewhere: the strip decides
    job = _run(scene, from_strip=True)
    assert job.error is None, job.error
    assert [f for f, _ in job.samples][:3] == [30, 32, 34]  # video frame k sits at scene frame 30 + k
    keyed = key_frames(pip.data.shape_keys)
    assert keyed and min(keyed) >= 34 and max(keyed) <= 53  # only under the visible strip


def test_from_the_sequencer_a_frame_rate_mismatch_is_refused(addon, small_library, tmp_path):
    import skimage.data

    _pip(small_library)
    scene = bpy.context.scene
    sed = scene.sequence_editor_create()
    clip = video(str(tmp_path / "clip30.avi"), [skimage.data.astronaut()] * 4, fps=30)
    sed.active_strip = strips(sed).new_movie(name="clip30", filepath=clip, channel=1, frame_start=1)
    with pytest.raises(mod("errors").WorkflowError, match="30 fps"):
        mod("batch.workflow").start_batch(scene, from_strip=True)
    assert not scene.deepexpr.busy


def test_a_library_the_backend_has_never_indexed_is_indexed_first(addon, small_library, performance, tmp_path):
    """The backend indexes a new library before the first frame ($/progress with stage "index"): the batch
    shows it and then keys as usual (issue 12: index builds report progress)."""
    import json
    import shutil
    import uuid

    fresh = tmp_path / "fresh"
    shutil.copytree(small_library, fresh)
    data = json.loads((fresh / "library.json").read_text())
    data["name"] = f"never indexed {uuid.uuid4()}"  # a new content hash: a new index (the cache outlives runs)
    (fresh / "library.json").write_text(json.dumps(data))
    _pip(str(fresh))
    scene = bpy.context.scene
    scene.deepexpr.batch_input, scene.deepexpr.batch_step = performance, 4
    seen = []
    job_cls = mod("jobs").Job
    original = job_cls.indexing

    def spy(self, p):
        handled = original(self, p)
        seen.append(handled)
        return handled

    job_cls.indexing = spy
    try:
        job = _run(scene)
    finally:
        job_cls.indexing = original
    assert job.error is None and not job.failed and job.keyed_starts, job.error
    assert True in seen  # at least one indexing notification came, and was shown rather than keyed
