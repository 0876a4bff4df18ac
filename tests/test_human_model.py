"""The shipped human expression network with its post-hoc head (``backend/calibration.py``): the served
probabilities are the head's, the head is what its card says, and the recorded accuracy holds on a fixed
FER2013 test subset (skipped without ../shared/data)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from backend.calibration import (
    MIRROR68,
    Expert,
    Head,
    aligned_landmarks,
    cnn_probabilities,
    head_for,
    head_stem,
    load_head,
    mirror_landmarks,
    save_head,
    softmax,
)
from backend.engine import DEFAULT_EXPRESSION_MODEL, Engine, EngineConfig
from backend.errors import DeepExprError
from backend.models import load_model
from deepexpr_blender.core import protocol
from tests.conftest import shared_path


@pytest.fixture(scope="module")
def shipped() -> Engine:
    return Engine(EngineConfig(device="cpu", expression_model=DEFAULT_EXPRESSION_MODEL, character_model=None))


def test_mirror_is_an_involution_that_swaps_sides():
    assert [MIRROR68[i] for i in MIRROR68] == list(range(68))
    assert MIRROR68[36] == 45 and MIRROR68[48] == 54 and MIRROR68[8] == 8 and MIRROR68[30] == 30
    lm = np.random.default_rng(0).random((3, 68, 2)).astype(np.float32)
    np.testing.assert_allclose(mirror_landmarks(mirror_landmarks(lm)), lm, atol=1e-6)


def test_head_is_shipped_beside_the_network():
    head = head_for(DEFAULT_EXPRESSION_MODEL)
    assert head is not None and head.geometry is not None
    with open(head_stem(DEFAULT_EXPRESSION_MODEL) + ".json", encoding="utf-8") as f:
        card = json.load(f)
    assert card["architecture"] == "CalibratedHead" and card["config"]["tau"] == head.tau
    assert 0 < head.a < 5 and 0 <= head.b < 5


def test_served_probabilities_are_the_heads(shipped, astronaut_path):
    """classify reports softmax(a log p_cnn(flip TTA) + b log p_geo + bias - tau log prior), recomputed here
    from the pieces, and not the network's plain softmax."""
    res = shipped.classify(astronaut_path)
    served = np.array(list(res["probabilities"].values()))
    assert served.sum() == pytest.approx(1.0, abs=1e-3)
    fa = shipped.analyze(astronaut_path)
    x = shipped.input_tensor([fa])
    head = head_for(DEFAULT_EXPRESSION_MODEL)
    p_cnn = cnn_probabilities(shipped.expression.module, x, flip_tta=True)
    lm = aligned_landmarks(fa.points68, fa.aligned(48).matrix, 48)[None]
    geo = shipped.geometry(fa)[None]
    with torch.inference_mode():
        p_geo = np.mean(
            [
                torch.softmax(head.geometry(torch.from_numpy(np.concatenate([v.reshape(1, -1), geo], 1))), 1).numpy()
                for v in (lm, mirror_landmarks(lm))
            ],
            axis=0,
        )
    z = head.a * np.log(p_cnn) + head.b * np.log(p_geo) + head.bias - head.tau * head.log_prior
    for e in head.experts:  # each shipped expert network votes with its own weight
        z = z + e.weight * np.log(np.clip(cnn_probabilities(e.loaded.module, x, flip_tta=True), 1e-8, 1))
    np.testing.assert_allclose(served, softmax(z)[0], atol=2e-5)
    plain = cnn_probabilities(shipped.expression.module, x, flip_tta=False)[0]
    assert np.abs(served - plain).max() > 1e-3
    # the crop-frame landmarks are where the alignment put the anchor points: the eyes on the template's eyes
    assert 0.15 < lm[0, 36, 0] < 0.35 and 0.65 < lm[0, 45, 0] < 0.85


def test_without_a_head_the_plain_softmax_is_served(tmp_path, astronaut_path):
    stem = str(tmp_path / "bare")
    for ext in (".safetensors", ".json"):
        shutil.copy(DEFAULT_EXPRESSION_MODEL[: -len(".safetensors")] + ext, stem + ext)
    assert load_head(head_stem(stem + ".safetensors")) is None
    eng = Engine(EngineConfig(device="cpu", expression_model=stem + ".safetensors", character_model=None))
    res = eng.classify(astronaut_path)
    probs, _ = eng.classify_tensor(eng.input_tensor([eng.analyze(astronaut_path)]))
    np.testing.assert_allclose(list(res["probabilities"].values()), probs[0], atol=1e-5)


def _copy_model(src_stem: str, dst_stem: str) -> None:
    for ext in (".safetensors", ".json"):
        shutil.copy(src_stem + ext, dst_stem + ext)


def test_an_expert_beside_the_head_votes_with_its_weight(tmp_path, astronaut_path):
    """A head with an expert network (saved beside it) serves softmax(... + c log p_expert): here the expert
    is a copy of the network with its weights negated in the last layer, so its vote visibly moves the
    probabilities, and the head file names it relative to its own folder."""
    from safetensors.torch import load_file, save_file

    model_stem = DEFAULT_EXPRESSION_MODEL[: -len(".safetensors")]
    stem = str(tmp_path / "net")
    _copy_model(model_stem, stem)
    _copy_model(model_stem, stem + "_expert1")
    state = load_file(stem + "_expert1.safetensors")
    state["fc2.1.weight"] = -state["fc2.1.weight"]
    save_file(state, stem + "_expert1.safetensors")
    base = head_for(DEFAULT_EXPRESSION_MODEL)
    expert = load_model(stem + "_expert1", "expert", torch.device("cpu"))
    head = Head(
        base.a,
        base.b,
        base.bias,
        base.log_prior,
        base.tau,
        base.geometry,
        experts=[Expert(stem + "_expert1", 0.7, expert)],
    )
    save_head(head, {"architecture": "CalibratedHead"}, head_stem(stem + ".safetensors"))
    with open(head_stem(stem + ".safetensors") + ".json", encoding="utf-8") as f:
        assert json.load(f)["config"]["experts"] == [{"stem": "net_expert1", "weight": 0.7}]
    loaded = load_head(head_stem(stem + ".safetensors"))
    assert [round(e.weight, 6) for e in loaded.experts] == [0.7]
    eng = Engine(EngineConfig(device="cpu", expression_model=stem + ".safetensors", character_model=None))
    served = np.array(list(eng.classify(astronaut_path)["probabilities"].values()))
    fa = eng.analyze(astronaut_path)
    x = eng.input_tensor([fa])
    lm = aligned_landmarks(fa.points68, fa.aligned(48).matrix, 48)[None]
    geo = eng.geometry(fa)[None]
    p_cnn = cnn_probabilities(eng.expression.module, x, True)
    p_exp = cnn_probabilities(expert.module, x, True)
    expected = loaded.fuse(p_cnn, loaded.geometry_probabilities(lm, geo), [p_exp])
    np.testing.assert_allclose(served, expected[0], atol=2e-5)
    alone = Head(loaded.a, loaded.b, loaded.bias, loaded.log_prior, loaded.tau, loaded.geometry)
    without = alone.fuse(p_cnn, alone.geometry_probabilities(lm, geo))
    assert np.abs(served - without[0]).max() > 0.01  # the vote counts


def test_a_damaged_expert_is_a_clear_model_error(tmp_path):
    model_stem = DEFAULT_EXPRESSION_MODEL[: -len(".safetensors")]
    stem = str(tmp_path / "net")
    _copy_model(model_stem, stem)
    _copy_model(model_stem, stem + "_expert1")
    base = head_for(DEFAULT_EXPRESSION_MODEL)
    expert = load_model(stem + "_expert1", "expert", torch.device("cpu"))
    head = Head(
        base.a, base.b, base.bias, base.log_prior, base.tau, None, experts=[Expert(stem + "_expert1", 0.5, expert)]
    )
    save_head(head, {"architecture": "CalibratedHead"}, head_stem(stem))
    with open(stem + "_expert1.safetensors", "r+b") as f:
        f.truncate(1000)
    with pytest.raises(DeepExprError) as err:
        load_head(head_stem(stem))
    assert err.value.code == protocol.MODEL_INVALID and "net_expert1" in err.value.message


def test_recorded_accuracy_on_the_fixed_fer2013_subset(shipped):
    """The head's card records the served path's accuracy on a fixed FER2013 test subset; it still holds."""
    from training.fit_head import fixed_subset, served_predictions

    root = shared_path("fer2013", "test")
    with open(head_stem(DEFAULT_EXPRESSION_MODEL) + ".json", encoding="utf-8") as f:
        recorded = json.load(f)["metrics"]["fer2013_test_subset_accuracy"]
    items = fixed_subset(root)
    assert len(items) == 280
    acc = float(np.mean(served_predictions(shipped, items) == [i.label for i in items]))
    assert acc == pytest.approx(recorded, abs=1.5 / len(items))  # one face may flip across thread counts
    assert acc > 0.5  # and far above chance (1/7)
