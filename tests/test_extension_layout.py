# ruff: noqa: F811  (fixtures imported from tests/blender_addon.py are parameters of the tests)
"""Issue 11, points 4, 6 and 7: the backend's thread cap, readable candidates, and where things land (Add
character, transition strips: channel, scale, and their frames moved beside the .blend on first save)."""

from __future__ import annotations

import os

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
    zip_path,  # noqa: F401  (fixture)
)

pytestmark = pytest.mark.blender


def test_the_thread_preference_reaches_the_backend(addon):
    reset_scene()
    prefs = bpy.context.preferences.addons[MODULE].preferences
    connection, backend = mod("session.connection"), mod("status").backend
    assert 1 <= prefs.threads <= 4  # default: half the cores, at most 4
    for n in (1, 2):
        prefs.threads = n
        client = connection.get_client()
        assert client.command()[-2:] == ["--threads", str(n)]
        bpy.ops.deepexpr.check_backend()
        assert drain_until(lambda: backend["info"] is not None, 120), backend
        assert backend["info"]["threads"] == n and f", {n} thread" in backend["text"]
    assert connection.get_client() is client  # unchanged preferences: the same backend


def test_candidates_show_character_label_intensity_and_full_score(addon, small_library):
    reset_scene()
    scene = bpy.context.scene
    props = scene.deepexpr
    props.source, props.image_path = "IMAGE", astronaut()
    job = mod("capture.workflow").capture(scene)
    assert drain_until(lambda: job.done)
    props.library, props.library_path, props.top_k = "CUSTOM", small_library, 6
    job = mod("find_and_key.workflow").find_poses(scene)
    assert drain_until(lambda: job.done, 300) and job.error is None, job.error
    ui = mod("find_and_key.ui")
    lines = [ui.candidate_text(i, c) for i, c in enumerate(props.candidates)]
    assert len(lines) == 6 and len({c.pose_id for c in props.candidates}) == 6
    for line, c in zip(lines, props.candidates):
        assert line.startswith(f"{lines.index(line) + 1}. Pip: {c.label} ")
        assert f"{c.score:.4f}" in line and f"{c.intensity:.0%}" in line and 0 < c.intensity <= 1
        assert len(line) <= 34  # fits the default sidebar width beside its 20 px thumbnail (see the screenshots)


def test_added_characters_are_selected_active_targeted_and_clear_of_others(addon):
    bpy.ops.wm.read_factory_settings(use_empty=False)  # the default scene: a cube at the origin
    import addon_utils

    addon_utils.enable(MODULE, default_set=True)
    placement = mod("library_from_rig.placement")
    cube = bpy.data.objects["Cube"]
    added = []
    for name in ("pip", "mira"):
        assert bpy.ops.deepexpr.add_character(character=name) == {"FINISHED"}
        obj = bpy.context.view_layer.objects.active
        added.append(obj)
        assert obj.name.startswith(name) and obj.select_get() and bpy.context.scene.deepexpr.target == obj
        assert [o for o in bpy.context.selected_objects] == [obj]
    boxes = [placement.world_bounds(o) for o in (cube, *added)]
    for i in range(3):
        for j in range(i + 1, 3):
            assert not placement._overlaps(boxes[i], boxes[j]), (i, j)


def test_a_transition_strip_goes_above_the_footage_it_covers_scaled_to_the_scene(addon, tmp_path):
    reset_scene()
    scene = bpy.context.scene
    scene.render.resolution_x, scene.render.resolution_y = 1920, 1080
    sed = scene.sequence_editor_create()
    footage = strips(sed).new_image(name="footage", filepath=astronaut(), channel=2, frame_start=1)
    footage.frame_final_duration = 100
    props = scene.deepexpr
    props.seq_source, props.seq_mode, props.seq_expression = astronaut(), "EXPRESSION", "joy"
    props.seq_frames, props.seq_method = 4, "warp"
    scene.frame_set(10)
    job = mod("transitions.workflow").start_transition(scene)
    assert drain_until(lambda: job.done, 300) and job.error is None, job.error
    strip = job.strip
    assert strip.channel == 3  # above the footage on channel 2, not under it on the free channel 1
    w, h = mod("sequencer").png_size(os.path.join(bpy.path.abspath(strip.directory), strip.elements[0].filename))
    assert (w, h) == (512, 512)
    assert strip.transform.scale_x == pytest.approx(1080 / 512) and strip.transform.scale_y == pytest.approx(1080 / 512)
    user_output = os.path.realpath(mod("paths").user_dir("output"))
    assert os.path.realpath(bpy.path.abspath(strip.directory)).startswith(user_output)

    # Saved for the first time: the frames move beside the .blend and the strip follows, relative.
    blend = tmp_path / "shot" / "shot.blend"
    blend.parent.mkdir()
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))
    strip = strips(scene.sequence_editor)[strip.name]
    assert strip.directory.startswith("//deepexpr/sequences/transition-"), strip.directory
    moved = bpy.path.abspath(strip.directory)
    assert os.path.realpath(moved).startswith(str(tmp_path.resolve()))
    assert all(os.path.isfile(os.path.join(moved, e.filename)) for e in strip.elements)
    # The .blend and its folder move together: the strip still finds its frames.
    import shutil

    name = strip.name  # the strip's RNA is gone once another file is opened
    shutil.move(str(blend.parent), str(tmp_path / "moved"))
    bpy.ops.wm.open_mainfile(filepath=str(tmp_path / "moved" / "shot.blend"))
    strip = strips(bpy.context.scene.sequence_editor)[name]
    assert os.path.isfile(os.path.join(bpy.path.abspath(strip.directory), strip.elements[0].filename))


def test_building_a_library_shows_real_progress_and_can_be_cancelled(addon):
    reset_scene()
    scene = bpy.context.scene
    bpy.ops.deepexpr.add_character(character="pip")
    pip = scene.deepexpr.target
    keys = pip.data.shape_keys.key_blocks
    keys["jaw_drop"].value = 0.3  # the rig's current state, to be given back
    found = mod("poses").find_poses(pip)
    LibraryJob, folder = mod("library_from_rig.job").LibraryJob, mod("library_from_rig.ops").library_folder(pip)
    first = LibraryJob(scene, pip, found[:3], folder, overwrite=True)
    first.run()
    before = open(os.path.join(folder, "library.json")).read()
    job = LibraryJob(scene, pip, found, folder, overwrite=True)
    seen = []
    for _ in range(3):
        job.step()
        seen.append((scene.deepexpr.progress, scene.deepexpr.status))
    assert scene.deepexpr.busy and scene.deepexpr.cancellable and scene.deepexpr.progress_known
    assert [round(p * len(found)) for p, _ in seen] == [1, 2, 3] and f"pose 3 of {len(found)}" in seen[-1][1]
    job.cancel()
    assert job.done and job.cancelled and not scene.deepexpr.busy
    assert "previous library is kept" in scene.deepexpr.status
    assert open(os.path.join(folder, "library.json")).read() == before  # the earlier library, untouched
    assert not os.path.exists(folder + ".partial")
    assert keys["jaw_drop"].value == pytest.approx(0.3)  # the rig given back as it was
