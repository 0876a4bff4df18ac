"""Warp, then refine: the sample face through the real pipeline at full resolution and colour; the mouth
interior, the paste-back's seam, the expression shading from data, and clear errors for bad input."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from backend.appearance import load_appearance, peak_scale
from backend.composite import face_mask, residual_edge_ratio, seam_ratio
from backend.errors import DeepExprError
from backend.mouth import cavity_strength, mouth_opening, paint_mouth
from backend.refine import FrameRenderer, check_landmarks
from backend.sequence import SequenceConfig, expression_target, generate

EXPRESSIONS = ("anger", "disgust", "fear", "joy", "sadness", "surprise")


@pytest.fixture(scope="module")
def face(engine, astronaut_path):
    fa = engine.analyze(astronaut_path)
    return cv2.imread(astronaut_path), fa.to_original(fa.points68)


def _far_from_face(shape, pts, grow=0.25):
    m = np.zeros(shape[:2], np.uint8)
    cv2.fillConvexPoly(m, cv2.convexHull(np.round(pts).astype(np.int32)), 1)
    k = int(grow * np.ptp(pts[:, 0]))
    return cv2.dilate(m, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1))) == 0


def test_generate_keeps_size_colour_and_background_and_changes_the_face(engine, astronaut_path, face, tmp_path):
    bgr, src = face
    res = generate(engine, astronaut_path, str(tmp_path / "s"), SequenceConfig(frames=5), expression="surprise")
    frames = [cv2.imread(p, cv2.IMREAD_UNCHANGED) for p in res["frames"]]
    assert all(f.shape == bgr.shape == (512, 512, 3) for f in frames)
    last = frames[-1].astype(np.float64)
    assert np.abs(frames[0].astype(np.float64) - bgr).mean() < 1.0  # frame 0 is the photo
    inside = face_mask(bgr.shape, src) > 0.5
    background = _far_from_face(bgr.shape, np.concatenate([src, np.asarray(res["landmarks"][-1])]))
    assert np.abs(last - bgr)[inside].mean() > 8.0  # the face changes
    assert np.abs(last - bgr)[background].mean() < 0.5  # the background does not
    # Colour kept: the face's chroma (YCrCb) moves far less than its luminance.
    ycc_src = cv2.cvtColor(bgr, cv2.COLOR_BGR2YCrCb).astype(np.float64)[inside]
    ycc_out = cv2.cvtColor(frames[-1], cv2.COLOR_BGR2YCrCb).astype(np.float64)[inside]
    assert np.abs(ycc_out[:, 1:].mean(0) - ycc_src[:, 1:].mean(0)).max() < 4.0
    assert frames[-1][..., 0].std() > 0 and not np.array_equal(frames[-1][..., 0], frames[-1][..., 2])  # colour


def test_open_mouth_target_gets_a_darker_cavity_inside_the_inner_lips(face):
    bgr, src = face
    tgt = expression_target(src, "surprise")
    assert mouth_opening(tgt) > 2 * mouth_opening(src) and cavity_strength(tgt, src) == 1.0
    r = FrameRenderer(bgr, src, [src, tgt], appearance=load_appearance())
    warped, refined = r.warp_only(1), r.render(1)
    poly = np.zeros(bgr.shape[:2], np.uint8)
    cv2.fillPoly(poly, [np.round(tgt[60:68]).astype(np.int32)], 1)
    top, bottom = tgt[[61, 62, 63], 1].mean(), tgt[[67, 66, 65], 1].mean()
    ys = np.arange(bgr.shape[0])[:, None]
    middle = poly.astype(bool) & (ys > top + 0.45 * (bottom - top)) & (ys < top + 0.75 * (bottom - top))
    g_w = cv2.cvtColor(warped, cv2.COLOR_BGR2GRAY)[middle].mean()
    g_r = cv2.cvtColor(refined, cv2.COLOR_BGR2GRAY)[middle].mean()
    assert g_r < 0.6 * g_w and g_r < 90  # a dark cavity where the warp stretched the lips and teeth
    upper = poly.astype(bool) & (ys > top + 1) & (ys < top + 0.2 * (bottom - top))
    assert cv2.cvtColor(refined, cv2.COLOR_BGR2GRAY)[upper].mean() > g_r + 60  # upper teeth, bright
    # A target that does not open the mouth gets no paint at all.
    closed = expression_target(src, "anger")
    assert cavity_strength(closed, src) == 0.0
    w = r.warp_points(closed)
    assert paint_mouth(w, closed, src) is w


def test_paste_back_has_no_seam(face):
    bgr, src = face
    targets = [expression_target(src, e) for e in EXPRESSIONS]
    r = FrameRenderer(bgr, src, [src, *targets], appearance=load_appearance())
    for i, tgt in enumerate(targets, 1):
        base, out = r.warp_only(i), r.render(i)
        mask = face_mask(bgr.shape, tgt)
        assert np.abs(out.astype(int) - base).max() > 10  # the refinement did something
        assert seam_ratio(base, out, mask) < 1.1, EXPRESSIONS[i - 1]
        assert residual_edge_ratio(base, out, mask) < 0.5, EXPRESSIONS[i - 1]


def test_expression_mix_recognises_each_named_expression(face):
    bgr, src = face
    app = load_appearance()
    assert app is not None and app.log_ratio.shape == (6, 64, 64)
    r = FrameRenderer(bgr, src, [src, src], appearance=app).appearance
    for e in EXPRESSIONS:
        w = app.weights(r.src_t, r._template(expression_target(src, e)))
        assert app.expressions[int(np.argmax(w))] == e
        # intensity 1 is at least a CK+ peak's shading (the named gains push the landmarks further; the
        # region gains of anger and fear make their targets project less onto the mean displacement)
        assert 0.6 * min(peak_scale(e), app.max_weight) < w.max() <= app.max_weight
    np.testing.assert_allclose(expression_target(src, "joy", 0.0), src, atol=1e-6)


def test_bad_input_gives_clear_errors(engine, astronaut_path, face, tmp_path):
    bgr, src = face
    nan = src.copy()
    nan[30] = np.nan
    with pytest.raises(DeepExprError, match="not finite"):
        FrameRenderer(bgr, src, [src, nan])
    with pytest.raises(DeepExprError, match="at least 32 px"):
        check_landmarks(src / 8, (64, 64))
    with pytest.raises(DeepExprError, match="68"):
        check_landmarks(src[:10], bgr.shape)
    with pytest.raises(DeepExprError, match="intensity"):
        expression_target(src, "joy", 1.7)
    keys = tmp_path / "nan.json"
    keys.write_text(json.dumps({"keyframes": [{"t": 1.0, "landmarks": nan.tolist()}]}))  # NaN is valid JSON here
    with pytest.raises(DeepExprError, match="not finite|NaN is not JSON") as exc:
        generate(engine, astronaut_path, str(tmp_path / "o"), SequenceConfig(frames=3), keyframes=str(keys))
    assert exc.value.name == "INVALID_PARAMS"


def test_remap_warp_matches_the_per_triangle_warp(face):
    from backend.refine import anchor_ring
    from backend.warp import PiecewiseAffineWarper, RemapWarper

    bgr, src = face
    tgt = expression_target(src, "surprise")
    ring = anchor_ring([src, tgt], bgr.shape)
    s, t = np.concatenate([src, ring]), np.concatenate([tgt, ring])
    a, b = PiecewiseAffineWarper(bgr, s).warp(t), RemapWarper(bgr, s).warp(t)
    assert np.abs(a.astype(int) - b).mean() < 0.05 and np.array_equal(RemapWarper(bgr, s).warp(s), bgr)
    assert np.abs(b.astype(int) - bgr).mean() > 1.0


def test_named_targets_never_cross_the_lips(face):
    """Anger's mean CK+ displacement at a strong peak lifts the lower inner lip past the upper one on a closed
    mouth (the warp then folds the lips over: a torn, doubled mouth); the target must press them shut instead."""
    _, src = face
    closed = src.copy()
    closed[65:68, 1] = closed[[63, 62, 61], 1]  # shut the sample face's lips: the case that crossed
    from backend.sequence import _to_template

    for e in EXPRESSIONS:
        t, _ = _to_template(expression_target(closed, e))  # the face upright: y down the face
        assert (t[[67, 66, 65], 1] > t[[61, 62, 63], 1]).all(), e
        assert (t[[50, 51, 52], 1] <= t[[61, 62, 63], 1]).all() and (t[[58, 57, 56], 1] >= t[[67, 66, 65], 1]).all()


def test_named_targets_keep_brows_above_the_lids_and_the_chin_below_the_lip(face):
    """A face whose brows sit low and whose chin is short: anger's lowered brows and the raised chin of the
    anger, disgust and fear displacements would pass into the lids and the lip (a folded, torn warp)."""
    from backend.sequence import FEATURE_KEEP, _from_template, _to_template

    _, src = face
    t0, m = _to_template(src)
    t0[17:27, 1] += 0.6 * (t0[[37, 37, 38, 38, 39, 42, 43, 43, 44, 44], 1] - t0[17:27, 1])  # brows low
    t0[4:13, 1] -= 0.6 * (t0[4:13, 1] - t0[57, 1])  # chin close under the lip
    low = _from_template(t0, m)
    for e in EXPRESSIONS:
        t, _ = _to_template(expression_target(low, e))
        for i, lid in ((19, [37, 38]), (24, [43, 44])):
            assert np.mean(t[lid, 1]) - t[i, 1] >= 0.8 * FEATURE_KEEP * (np.mean(t0[lid, 1]) - t0[i, 1]), e
        assert t[8, 1] - t[57, 1] >= 0.8 * FEATURE_KEEP * (t0[8, 1] - t0[57, 1]), e
