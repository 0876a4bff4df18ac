"""Expression transitions: interpolation and easing, targets, the warp, the GAN's shapes, CLI and server."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from backend.errors import DeepExprError
from backend.gan import Critic, ExpressionGAN, GanConfig, contrastive_loss
from backend.geometry import FEATURE_NAMES, geometric_features
from backend.landmarks import semantic_from_68
from backend.sequence import EASINGS, expression_target, image_target, interpolate
from backend.warp import PiecewiseAffineWarper

from .backend_client import ROOT, BackendProcess

F = {n: i for i, n in enumerate(FEATURE_NAMES)}


def test_interpolation_is_eq6_and_easing_shapes_time():
    a, b = np.zeros((68, 2)), np.ones((68, 2)) * 10
    lin = interpolate([(0, a), (10, b)], 11, "linear")
    np.testing.assert_allclose([f[0, 0] for f in lin], np.arange(11))  # (1 - t) a + t b, t = k / 10
    eased = interpolate([(0, a), (10, b)], 11, "ease_in_out")
    xs = np.array([f[0, 0] for f in eased])
    assert xs[0] == 0 and xs[-1] == 10 and np.all(np.diff(xs) >= 0)
    assert xs[1] - xs[0] < 1 and xs[5] - xs[4] > 1  # slow out of the key, faster in the middle
    three = interpolate([(0, a), (5, b), (10, a)], 11, "linear")
    assert three[5][0, 0] == 10 and three[10][0, 0] == 0
    with pytest.raises(DeepExprError):
        interpolate([(0, a), (10, b)], 11, "bounce")
    for name, fn in EASINGS.items():
        assert fn(np.array(0.0)) == 0 and fn(np.array(1.0)) == 1, name


def test_named_expression_targets_move_the_face_the_right_way(engine, astronaut_path):
    src = engine.analyze(astronaut_path).points68
    g0 = geometric_features(semantic_from_68(src))
    surprise = geometric_features(semantic_from_68(expression_target(src, "surprise")))
    assert surprise[F["inner_brow_height"]] > g0[F["inner_brow_height"]] + 0.03
    assert surprise[F["mouth_opening"]] > g0[F["mouth_opening"]] + 0.1
    sad = geometric_features(semantic_from_68(expression_target(src, "sadness")))
    assert sad[F["mouth_corner_lift"]] < g0[F["mouth_corner_lift"]]
    np.testing.assert_allclose(expression_target(src, "neutral"), src, atol=1e-6)
    moved = image_target(src, expression_target(src, "surprise"))
    assert geometric_features(semantic_from_68(moved))[F["mouth_opening"]] > g0[F["mouth_opening"]] + 0.1


def test_warp_moves_pixels_along_the_landmarks():
    img = np.zeros((120, 120), np.uint8)
    cv2.circle(img, (60, 60), 8, 255, -1)
    src = np.array([[40.0 + 40 * (i % 2), 40.0 + 40 * (i // 2 % 2)] for i in range(68)]) + np.random.default_rng(
        0
    ).normal(0, 0.5, (68, 2))
    src[0] = (60, 60)
    dst = src.copy()
    dst[0] = (70, 60)  # drag the blob's point 10 px right
    out = PiecewiseAffineWarper(img, src).warp(dst)
    ys, xs = np.nonzero(out > 128)
    assert xs.mean() > 63 and abs(ys.mean() - 60) < 3
    same = PiecewiseAffineWarper(img, src).warp(src)
    assert np.abs(same.astype(int) - img).mean() < 1.0  # identity warp keeps the image


def test_gan_shapes_and_contrastive_loss():
    import torch

    g, d = ExpressionGAN(GanConfig()), Critic(GanConfig())
    x, lm = torch.randn(3, 1, 64, 64), torch.rand(3, 68, 2) * 2 - 1
    y = g(x, lm)
    assert y.shape == (3, 1, 64, 64) and y.abs().max() <= 1
    assert d(y, x).shape == (3, 1, 2, 2)
    z = torch.zeros(4, 8)
    far = torch.full((4, 8), 10.0)
    assert contrastive_loss(z, z, torch.zeros(4)) == 0  # same expression, same embedding
    assert contrastive_loss(z, far, torch.ones(4)) == 0  # different expressions beyond the margin
    assert contrastive_loss(z, z, torch.ones(4)) == pytest.approx(12.5)  # different but together: m^2 / 2


@pytest.fixture(scope="module")
def random_gan(tmp_path_factory):
    import torch

    from backend.models import ModelCard, save_model

    torch.manual_seed(0)
    cfg = GanConfig()
    return save_model(
        ExpressionGAN(cfg).eval(),
        ModelCard("ExpressionGAN", cfg.__dict__, classes=[], input={"size": 64}),
        str(tmp_path_factory.mktemp("gan") / "gan"),
    )


def _generate(random_model: str, gan: str, *args: str) -> subprocess.CompletedProcess:
    """``deepexpr generate`` with the random expression network and the given GAN weights."""
    cmd = [sys.executable, "-m", "backend.cli", "--expression-model", random_model, "generate", *args]
    env = {**os.environ, "DEEPEXPR_GAN_MODEL": gan}
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)


def test_generate_cli_warp_and_gan(random_model, random_gan, astronaut_path, tmp_path):
    for method in ("warp", "gan"):
        out = tmp_path / method
        r = _generate(
            random_model, random_gan, "--source", astronaut_path, "--expression", "joy", "--frames", "6",
            "--method", method, "--out", str(out), "--sheet", str(tmp_path / f"{method}.png"),
            "--gif", str(tmp_path / f"{method}.gif"), "--json",
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
        res = json.loads(r.stdout)
        frames = [cv2.imread(f) for f in res["frames"]]
        assert len(frames) == 6
        if method == "gan":
            assert frames[0].shape[:2] == (64, 64)
        else:
            assert frames[0].shape[:2] == (512, 512)
            steps = [np.abs(frames[i + 1].astype(float) - frames[i]).mean() for i in range(5)]
            assert np.abs(frames[0].astype(float) - cv2.imread(astronaut_path)).mean() < 1.0  # frame 0 = source
            assert all(s > 0 for s in steps) and max(steps) < 4 * np.mean(steps)  # moves every frame, no jump
        assert os.path.getsize(tmp_path / f"{method}.gif") > 0


def test_generate_over_the_server_with_progress_and_cancel(random_model, astronaut_path, tmp_path):
    from deepexpr_blender.core import protocol as P

    srv = BackendProcess("--expression-model", random_model)
    try:
        srv.initialize()
        kf = tmp_path / "keys.json"
        kf.write_text(
            json.dumps({"keyframes": [{"t": 0.5, "expression": "surprise"}, {"t": 1.0, "expression": "joy"}]})
        )
        srv.notifications.clear()
        res = srv.call(
            "generate_sequence",
            {
                "source": astronaut_path,
                "keyframes": str(kf),
                "frames": 5,
                "out": str(tmp_path / "kf"),
                "easing": "linear",
            },
        )
        assert len(res["frames"]) == 5 and [n["params"]["done"] for n in srv.notifications] == [1, 2, 3, 4, 5]
        bad = srv.request(
            "generate_sequence",
            {"source": astronaut_path, "expression": "joy", "target": "x.png", "out": str(tmp_path / "x")},
        )
        assert bad["error"]["data"]["name"] == "INVALID_PARAMS"
        srv.next_id += 1
        rid = srv.next_id
        srv.send(
            P.request(
                rid,
                "generate_sequence",
                {"source": astronaut_path, "expression": "fear", "frames": 200, "out": str(tmp_path / "long")},
            )
        )
        msg = srv.read()
        assert msg.get("method") == "$/progress"
        srv.send(P.notification("$/cancelRequest", {"id": rid}))
        resp = srv.read_response(rid)
        assert resp["error"]["data"]["name"] == "CANCELLED" and len(resp["error"]["data"]["partial"]["frames"]) < 200
    finally:
        assert srv.close() == 0


def test_gan_missing_weights_is_model_missing(random_model, astronaut_path, tmp_path):
    r = _generate(
        random_model, str(tmp_path / "none.safetensors"), "--source", astronaut_path, "--expression", "joy",
        "--method", "gan", "--out", str(tmp_path / "o"),
    )  # fmt: skip
    assert r.returncode == 2 and "MODEL_MISSING" in r.stderr and "none.safetensors" in r.stderr
