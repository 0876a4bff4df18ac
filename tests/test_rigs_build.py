"""Libraries from real imported rigs, in headless Blender: a VRM (1.0 and 0.x), an ARKit-keyed glTF, a rig
facing +Y, an animated rig, the shared artist-made rigs; labels, face-on framing, landmarks, the user's scene
left as it was, bad input refused with nothing half written."""

from __future__ import annotations

import json
import os

import cv2
import numpy as np
import pytest

bpy = pytest.importorskip("bpy", reason="bpy (Blender as a Python module) is not installed")

from deepexpr_blender.core import vrm  # noqa: E402
from deepexpr_blender.rigs import builder, character, framing, importing  # noqa: E402
from deepexpr_blender.rigs.landmarks3d import SEMANTIC_NAMES  # noqa: E402

from .conftest import shared_path  # noqa: E402
from .rig_fixtures import make_toon_arkit_glb, make_toon_armature_glb, make_toon_vrm  # noqa: E402

pytestmark = pytest.mark.blender
SEVEN = {"anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise"}
I = {n: i for i, n in enumerate(SEMANTIC_NAMES)}


def _import(path: str):
    bpy.ops.wm.read_factory_settings(use_empty=True)
    objs = importing.import_character(path)
    face = importing.pick_face_object(objs)
    return face, character.character_objects(face)


def _library(out: str) -> dict:
    with open(os.path.join(out, "library.json"), encoding="utf-8") as f:
        return json.load(f)


def _seen_from_the_front(entry: dict, size: int) -> None:
    """Landmarks of a face seen upright from the front: eyes above nose above mouth above chin, the image's left
    eye on the left, the face box filling the frame the way a human crop does."""
    p = np.asarray(entry["landmarks"])
    eyes_y = p[[I["l_eye_top"], I["r_eye_top"]], 1].max()
    assert eyes_y < p[I["nose_tip"], 1] < p[I["mouth_l"], 1] < p[I["chin"], 1], entry["id"]
    assert p[I["l_eye_outer"], 0] < p[I["l_eye_inner"], 0] < p[I["r_eye_inner"], 0] < p[I["r_eye_outer"], 0]
    assert p[I["mouth_l"], 0] < p[I["mouth_r"], 0]
    x0, y0, x1, y1 = entry["face_box"]
    assert 0.45 * size < max(x1 - x0, y1 - y0) < 0.85 * size, entry["face_box"]
    assert abs((x0 + x1) / 2 - size / 2) < 0.1 * size and abs((y0 + y1) / 2 - size / 2) < 0.1 * size


@pytest.fixture(scope="module")
def toon_vrm(tmp_path_factory) -> str:
    return make_toon_vrm(str(tmp_path_factory.mktemp("vrm") / "pip.vrm"), "1.0")


def test_vrm_rig_gives_a_labelled_face_on_library_and_leaves_the_scene_alone(toon_vrm, tmp_path):
    face, objs = _import(toon_vrm)
    scene = bpy.context.scene
    keys = face.data.shape_keys.key_blocks
    keys["jaw_drop"].value = 0.3  # the user's current pose
    values = {kb.name: kb.value for kb in keys}
    before = (len(bpy.data.scenes), scene.camera, scene.render.engine, scene.frame_current, len(bpy.data.objects))
    poses, report = builder.rig_poses(objs, toon_vrm)
    assert report["scheme"] == "vrm 1.0" and report["missing"] == []
    out = str(tmp_path / "lib")
    info = builder.build_rig_library(face, out, poses, roles=report["roles"])
    assert info["landmarks"] == "motion" and info["entries"] == len(poses)
    after = (len(bpy.data.scenes), scene.camera, scene.render.engine, scene.frame_current, len(bpy.data.objects))
    assert after == before
    assert {kb.name: kb.value for kb in keys} == values
    lib = _library(out)
    entries = lib["entries"]
    assert {e["label"] for e in entries} - {None} == SEVEN
    assert {e["expression"] for e in entries if e["label"] is None} == {"relaxed"}
    assert sorted({e["intensity"] for e in entries if e["label"] == "joy"}) == [0.5, 0.75, 1.0]
    for e in entries:
        img = cv2.imread(os.path.join(out, e["thumbnail"]))
        assert img.shape == (256, 256, 3)
        _seen_from_the_front(e, 256)
    thumb = {e["id"].split("-", 1)[1]: cv2.imread(os.path.join(out, e["thumbnail"])).astype(float) for e in entries}
    assert np.abs(thumb["neutral"] - thumb["anger_100"]).mean() > 1.0  # the expression shows
    # every key any pose sets is in every pose (applying one pose clears the last)
    assert len({tuple(sorted(e["pose"]["values"])) for e in entries}) == 1
    from backend.library import load_library

    assert len(load_library(out).entries) == len(entries)


def test_vrm0_table_and_its_custom_surprise(tmp_path):
    path = make_toon_vrm(str(tmp_path / "pip0.vrm"), "0.x")
    face, objs = _import(path)
    poses, report = builder.rig_poses(objs, path)
    assert report["scheme"] == "vrm 0.x"
    assert {p.label for p in poses} - {None} == SEVEN
    assert {p.expression for p in poses if p.label is None} == {"fun"}


def test_projection_matches_blenders_camera(toon_vrm):
    from bpy_extras.object_utils import world_to_camera_view
    from mathutils import Vector

    face, objs = _import(toon_vrm)
    poses, _ = builder.rig_poses(objs, toon_vrm)
    with character.RestState(objs):
        region = framing.face_region(objs, [p.values for p in poses])
        frame = framing.frame_face(region)
        pts = region.points()[::97]
        px, _ = frame.project(pts)
        with framing.ThumbnailScene(objs, frame) as ts:
            for p, (u, v) in zip(pts, px):
                c = world_to_camera_view(ts.scene, ts.cam, Vector(p))
                assert (c.x * frame.size, (1 - c.y) * frame.size) == pytest.approx((u, v), abs=0.05)


def test_evaluated_vertices_read_in_place_match_a_mesh_copy_and_rest_bones_undoes_a_pose(tmp_path):
    """The builder reads the evaluated meshes in place (no ``to_mesh`` copy): the same world positions and
    normals as a copy, through an armature and shape keys; ``rest_bones`` puts a posed armature back at rest
    (and what it moved back where it was) and leaves one at rest as it is."""
    face, objs = _import(make_toon_armature_glb(str(tmp_path / "arm.glb")))
    arm = next(o for o in objs if o.type == "ARMATURE")
    meshes = [o.name for o in objs if o.type == "MESH"]
    with character.RestState(objs):
        assert character.bones_at_rest(arm)
        rest = character.evaluated_many(objs, meshes)
        character.rest_bones(objs)  # already at rest: nothing to undo
        assert all(np.array_equal(rest[n], v) for n, v in character.evaluated_many(objs, meshes).items())
        pb = arm.pose.bones["head"]
        pb.rotation_mode = "XYZ"
        pb.rotation_euler = (0.3, 0.0, 0.4)
        key = face.data.shape_keys.key_blocks[1]
        key.value = 1.0
        assert not character.bones_at_rest(arm)
        dg = bpy.context.evaluated_depsgraph_get()
        for n in meshes:
            co, nor = character.evaluated(bpy.data.objects[n], normals=True)
            ev = bpy.data.objects[n].evaluated_get(dg)
            me = ev.to_mesh()
            ref = np.array([ev.matrix_world @ v.co for v in me.vertices])
            inv_t = ev.matrix_world.to_3x3().inverted().transposed()
            ref_n = np.array([(inv_t @ v.normal).normalized() for v in me.vertices])
            ev.to_mesh_clear()
            assert co == pytest.approx(ref, abs=1e-5) and nor == pytest.approx(ref_n, abs=1e-4)
        assert np.abs(character.evaluated(face)[0] - rest[face.name]).max() > 0.05  # the pose moved it
        key.value = 0.0
        character.rest_bones(objs)
        assert character.bones_at_rest(arm)
        back = character.evaluated_many(objs, meshes)
        assert all(back[n] == pytest.approx(rest[n], abs=1e-5) for n in meshes)


def test_five_aa_samples_are_as_close_to_a_32_sample_render_as_eight(tmp_path):
    """The thumbnails' 5 Workbench AA samples (``ThumbnailConfig.aa_samples``) lose nothing against Blender's
    default 8: both as far from a 32-sample render of the same poses (edges only)."""
    from deepexpr_blender.toon import CHARACTERS, build_character

    bpy.ops.wm.read_factory_settings(use_empty=True)
    obj = build_character(CHARACTERS[0])
    poses, _ = builder.rig_poses([obj])
    poses = [p for p in poses if p.intensity in (None, 0.0, 1.0)][:3]
    objs = character.character_objects(obj)
    assert framing.ThumbnailConfig().aa_samples == "5"
    imgs: dict[str, list] = {}
    with character.RestState(objs):
        region = framing.face_region(objs, [p.values for p in poses])
        frame = framing.frame_face(region)
        for aa in ("32", "8", "5"):
            cfg = framing.ThumbnailConfig(aa_samples=aa)
            with framing.ThumbnailScene(objs, frame, cfg) as ts:
                assert ts.scene.display.render_aa == aa
                for i, p in enumerate(poses):
                    framing.show_pose(objs, p.values)
                    imgs.setdefault(aa, []).append(cv2.imread(ts.render(str(tmp_path / f"{aa}_{i}.png"))).astype(float))
    far = {aa: np.mean([np.abs(a - r).mean() for a, r in zip(imgs[aa], imgs["32"])]) for aa in ("8", "5")}
    assert 0 < far["5"] <= 1.2 * far["8"] and far["5"] < 2.0, far


def test_a_rig_facing_plus_y_is_seen_from_the_front(tmp_path):
    from deepexpr_blender.toon import CHARACTERS, build_character

    thumbs = []
    for turn in (0.0, np.pi):
        bpy.ops.wm.read_factory_settings(use_empty=True)
        obj = build_character(CHARACTERS[0])
        obj.rotation_euler = (0.0, 0.0, turn)  # turn: the face looks down +Y, as a VRM does after import
        bpy.context.view_layer.update()
        poses, _ = builder.rig_poses([obj])
        out = str(tmp_path / f"turn{turn:.1f}")
        info = builder.build_rig_library(obj, out, poses)
        assert info["forward"] == pytest.approx([0.0, -np.cos(turn), 0.0], abs=0.05)
        neutral = next(e for e in _library(out)["entries"] if e["label"] == "neutral")
        _seen_from_the_front(neutral, 256)
        thumbs.append(cv2.imread(os.path.join(out, neutral["thumbnail"])).astype(float))
    assert np.abs(thumbs[0] - thumbs[1]).mean() < 3.0  # the same face, not the back of the head


def test_an_imported_animation_is_not_taken_for_poses_and_is_given_back(tmp_path):
    from deepexpr_blender.toon import CHARACTERS, build_character

    bpy.ops.wm.read_factory_settings(use_empty=True)
    obj = build_character(CHARACTERS[1])
    kb = obj.data.shape_keys.key_blocks["jaw_drop"]
    for frame, v in ((1, 0.0), (20, 1.0)):
        kb.value = v
        kb.keyframe_insert("value", frame=frame)
    bpy.context.scene.frame_set(20)
    action = obj.data.shape_keys.animation_data.action
    poses, _ = builder.rig_poses([obj])
    assert len(poses) == 19  # the mapping's poses, not the 2 keyed frames
    out = str(tmp_path / "lib")
    builder.build_rig_library(obj, out, poses)
    entries = _library(out)["entries"]
    neutral = next(e for e in entries if e["label"] == "neutral")
    surprise = next(e for e in entries if e["id"].endswith("surprise_100"))
    # rest pose: the neutral's mouth is closed although the animation holds the jaw open at this frame
    p, q = np.asarray(neutral["landmarks"]), np.asarray(surprise["landmarks"])
    assert q[I["chin"], 1] - p[I["chin"], 1] > 5
    assert obj.data.shape_keys.animation_data.action is action
    bpy.context.scene.frame_set(20)
    assert kb.value == pytest.approx(1.0, abs=1e-6)


def test_arkit_keyed_gltf_composes_the_seven_expressions(tmp_path):
    path = make_toon_arkit_glb(str(tmp_path / "arkit.glb"))
    face, objs = _import(path)
    poses, report = builder.rig_poses(objs)
    assert report["scheme"] == "arkit" and report["missing"] == []
    joy = next(p for p in poses if p.name == "joy_100").values[face.name]
    assert joy == {"cheekSquintLeft": 0.75, "mouthSmileLeft": 0.85, "mouthLowerDownLeft": 0.15, "jawOpen": 0.045}
    out = str(tmp_path / "lib")
    builder.build_rig_library(face, out, poses)
    assert {e["label"] for e in _library(out)["entries"]} == SEVEN


def test_bad_rigs_are_refused_and_nothing_is_half_written(tmp_path, toon_vrm):
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.mesh.primitive_cube_add()
    cube = bpy.context.active_object
    with pytest.raises(ValueError, match="no expression keys"):
        builder.rig_poses([cube])
    cube.shape_key_add(name="Basis")
    cube.shape_key_add(name="Angry")  # a key that moves nothing
    poses, _ = builder.rig_poses([cube])
    out = str(tmp_path / "lib")
    with pytest.raises(ValueError, match="no pose moves"):
        builder.build_rig_library(cube, out, poses)
    assert not os.path.exists(out) and not os.path.exists(out + ".partial")
    # an existing library is kept unless overwriting is allowed
    face, objs = _import(toon_vrm)
    poses, report = builder.rig_poses(objs, toon_vrm)
    builder.build_rig_library(face, out, poses[:4], roles=report["roles"])
    first = open(os.path.join(out, "library.json")).read()
    with pytest.raises(FileExistsError, match="already holds a library"):
        builder.build_rig_library(face, out, poses, roles=report["roles"])
    assert open(os.path.join(out, "library.json")).read() == first
    # a broken VRM table is refused before anything is built
    broken = str(tmp_path / "broken.vrm")
    with open(toon_vrm, "rb") as f:
        doc, binary = vrm.read_glb(f.read())
    doc["extensions"]["VRMC_vrm"]["expressions"]["preset"]["happy"]["morphTargetBinds"][0]["index"] = 99
    with open(broken, "wb") as f:
        f.write(vrm.write_glb(doc, binary))
    with pytest.raises(vrm.VrmError, match="happy.*morph target 99 does not exist"):
        builder.rig_poses(objs, broken)


def test_retrieval_on_a_built_rig_library_uses_its_landmarks_and_geometry(toon_vrm, tmp_path, astronaut_path):
    """The backend computes each entry's geometry from its stored landmarks (the library stores none) and
    scores the declared labels: every part of the score runs for a rig library."""
    from backend.engine import Engine, EngineConfig
    from backend.library import load_library

    face, objs = _import(toon_vrm)
    poses, report = builder.rig_poses(objs, toon_vrm)
    out = str(tmp_path / "lib")
    builder.build_rig_library(face, out, poses, roles=report["roles"])
    assert all(e["geometry"] is None and e["landmarks"] for e in _library(out)["entries"])
    engine = Engine(EngineConfig(device="cpu"))
    res = engine.retriever.retrieve(astronaut_path, out, top_k=len(poses))
    cands = res["candidates"]
    assert len(cands) == len(poses) and len({c["id"] for c in cands}) == len(poses)
    assert len({c["geo"] for c in cands}) > len(poses) // 2  # the geometric term runs for this library
    assert len({c["label_distance"] for c in cands}) >= 7  # and the declared labels count
    assert len({round(c["js"], 6) for c in cands}) > len(poses) // 2  # entries are told apart
    index = engine.retriever.index(load_library(out))
    assert set(index.landmarks_from) == {"stored"} and index.relative is not None


# ------------------------------------------------------------------------------------------ shared rigs
@pytest.mark.shared_data
def test_weboji_head_library(tmp_path):
    path = shared_path("rigs", "weboji_boy", "weboji_boy.blend")
    face, objs = _import(path)
    for kb in face.data.shape_keys.key_blocks[1:]:
        assert kb.value == 1.0  # the file is saved with every key on: the builder must start from rest
    poses, report = builder.rig_poses(objs)
    assert report["scheme"] == "weboji" and sorted(report["missing"]) == ["fear", "sadness"]
    out = str(tmp_path / "lib")
    info = builder.build_rig_library(face, out, poses)
    assert info["landmarks"] == "motion"
    entries = _library(out)["entries"]
    assert {e["label"] for e in entries} == {"neutral", "joy", "surprise", "anger", "disgust"}
    for e in entries:
        _seen_from_the_front(e, 256)
    assert all(kb.value == 1.0 for kb in face.data.shape_keys.key_blocks[1:])  # given back


@pytest.mark.shared_data
@pytest.mark.slow
def test_rocketbox_armature_rig_library(tmp_path):
    path = shared_path("rigs", "rocketbox_male_adult_08", "Male_Adult_08_facial.fbx")
    face, objs = _import(path)
    arm = character.character_root(face)
    assert arm.type == "ARMATURE" and arm.animation_data.action is not None
    action = arm.animation_data.action
    poses, report = builder.rig_poses(objs)
    assert report["scheme"] == "facs" and len(poses) == 19
    out = str(tmp_path / "lib")
    info = builder.build_rig_library(face, out, poses)
    assert info["landmarks"] == "motion" and info["forward"] == pytest.approx([0, -1, 0], abs=0.05)
    for e in _library(out)["entries"]:
        _seen_from_the_front(e, 256)
    assert arm.animation_data.action is action
