"""Sparse key poses: held expressions with transitions come back in order, with their timing, as few keys."""

from __future__ import annotations

import numpy as np
import pytest

from backend.keyposes import KeyPoseConfig, key_poses, segment
from deepexpr_blender.core.vocabulary import LABELS


def performance(plan, rng, noise=0.06, transition=8):
    """A take: (label, hold frames) held in turn, with eased transitions of ``transition`` frames between them
    and per-frame noise (as the network's probabilities jitter). Returns probs and the true hold spans."""

    def dist(label, p=0.8):
        v = np.full(len(LABELS), (1 - p) / (len(LABELS) - 1))
        v[LABELS.index(label)] = p
        return v

    rows, spans, t = [], [], 0
    for i, (label, hold, *p) in enumerate(plan):
        if i:
            a, b = dist(*plan[i - 1][::2]), dist(label, *p)
            for k in range(transition):
                w = 0.5 - 0.5 * np.cos(np.pi * (k + 1) / (transition + 1))
                rows.append((1 - w) * a + w * b)
            t += transition
        spans.append((label, t, t + hold - 1))
        rows += [dist(label, *p)] * hold
        t += hold
    x = np.array(rows) + rng.normal(0, noise, (len(rows), len(LABELS)))
    x = np.clip(x, 1e-3, None)
    return x / x.sum(1, keepdims=True), spans


PLAN = [("neutral", 30), ("joy", 40), ("surprise", 25), ("anger", 35), ("neutral", 30)]


def test_held_expressions_recovered_in_order_with_timing():
    rng = np.random.default_rng(0)
    x, spans = performance(PLAN, rng)
    res = key_poses(np.arange(len(x)) + 1, x, LABELS)
    main = [k for k in res.keys if k.kind == "key"]
    assert [k.label for k in main] == [p[0] for p in PLAN]
    for k, (_, start, _) in zip(main, spans):
        assert abs(k.index - start) <= 4, (k, start)
    holds = [k for k in res.keys if k.kind == "hold"]
    for h, (_, _, end) in zip(holds, spans):
        assert abs(h.index - end) <= 4, (h, end)
    assert res.report["sparse_keys"] * 3 <= res.report["dense_keys"]
    assert res.report["label_agreement"] > 0.9
    assert res.report["tv_error"] < 0.15


def test_density_control_orders_key_counts():
    rng = np.random.default_rng(1)
    # a smile that grows in small steps: few keys merge the steps, many keys follow them
    x, _ = performance([("joy", 25, p) for p in (0.3, 0.4, 0.5, 0.6, 0.7, 0.8)], rng, noise=0.05, transition=4)
    counts = [len(key_poses(np.arange(len(x)), x, LABELS, config=KeyPoseConfig(density=d)).keys) for d in (0, 0.5, 1)]
    assert counts[0] <= counts[1] <= counts[2]
    assert counts[0] < counts[2]


def test_a_constant_take_is_one_segment():
    x = np.tile(np.eye(len(LABELS))[3] * 0.7 + 0.05, (50, 1))
    res = key_poses(np.arange(50), x, LABELS)
    assert len(res.segments) == 1 and res.keys[0].label == "joy"
    assert [k.kind for k in res.keys] == ["key", "hold"]


def test_segment_is_optimal_on_a_step():
    x = np.concatenate([np.zeros((20, 2)), np.ones((30, 2))])
    assert segment(x, penalty=0.5, min_size=2) == [(0, 20), (20, 50)]


def test_candidates_pick_the_pose_that_wins_the_hold():
    rng = np.random.default_rng(2)
    x, spans = performance([("joy", 20), ("sadness", 20)], rng, noise=0.02)
    cands = [
        [("smile", 0.1), ("frown", 0.9)] if x[i].argmax() == LABELS.index("joy") else [("frown", 0.2), ("smile", 0.8)]
        for i in range(len(x))
    ]
    res = key_poses(np.arange(len(x)), x, LABELS, candidates=cands)
    assert [k.pose_id for k in res.keys if k.kind == "key"] == ["smile", "frown"]


@pytest.mark.parametrize("bad", [np.zeros((0, 7)), np.full((5, 7), np.nan), np.zeros(7)])
def test_bad_trajectories_are_refused(bad):
    with pytest.raises(ValueError):
        key_poses(np.arange(len(bad)), bad, LABELS)
