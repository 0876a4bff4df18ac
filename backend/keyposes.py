"""Sparse key poses from a performance: what an animator would key, not one key per frame.

Input is the per-frame expression trajectory of a take (the human network's probabilities for each sampled
frame, optionally the retrieval's candidates per frame). The trajectory is cut into expression segments by an
optimal penalised change-point segmentation (least squares on the probability vectors, solved exactly by
dynamic programming with PELT pruning, Killick et al. 2012); each segment is one expression, held. A segment
gives a **key** where the expression is reached (arrival) and, when it is held, a **hold** key where it is
released, so interpolation between keys reproduces "move, hold, move". Optional **breakdowns** go where the
interpolated sparse trajectory strays furthest from the dense one.

Density: the penalty per segment is ``c * sigma^2 * D * log(T)`` (a BIC-like penalty scaled by the noise
level ``sigma`` estimated from the data itself); ``density`` in [0, 1] maps ``c`` from 8 (few keys) to 0.5
(many keys); 0.5 is the default, c = 2.

The report compares the sparse animation with the dense one (a key at every sampled frame):
``tv_error`` is the mean total-variation distance (half the L1 distance, 0..1) between the dense per-frame
expression distribution and the sparse one (key values interpolated linearly between keys, held before the
first and after the last key); ``label_agreement`` is the fraction of frames whose most likely expression is
the same in both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np


@dataclass
class KeyPoseConfig:
    density: float = 0.5  # 0 = fewest keys, 1 = most keys (maps the change-point penalty, see module doc)
    min_segment: int = 4  # shortest expression segment, in sampled frames
    smooth: int = 3  # width of the moving median applied to the trajectory before segmenting (1 = none)
    arrival_tolerance: float = 1.5  # a frame has "arrived" when its distance to the segment mean is within
    # this many times the segment's median distance
    min_hold: int = 3  # a hold key is added only when the pose is held at least this many sampled frames
    breakdowns: int = 0  # how many breakdown keys to add at most (0 = none)


@dataclass
class Key:
    index: int  # sample index in the trajectory
    frame: int  # the sample's frame number
    kind: str  # "key" (pose reached), "hold" (pose released) or "breakdown"
    label: str  # most likely expression of the key's value
    value: np.ndarray  # expression distribution keyed here (the segment mean, or the dense value for breakdowns)
    pose_id: str | None = None  # the library pose keyed here, when candidates were given
    segment: int = -1


@dataclass
class KeyPoseResult:
    keys: list[Key]
    segments: list[tuple[int, int]]  # [start, end) sample indices of the held expressions (transitions left out)
    report: dict = field(default_factory=dict)


def _moving_median(x: np.ndarray, width: int) -> np.ndarray:
    if width <= 1 or len(x) < 3:
        return x
    h = width // 2
    pad = np.pad(x, ((h, h), (0, 0)), mode="edge")
    win = np.lib.stride_tricks.sliding_window_view(pad, width, axis=0)  # (T, D, width)
    return np.median(win, axis=-1)


def noise_sigma(x: np.ndarray, width: int = 16, quantile: float = 75.0) -> float:
    """Robust per-dimension noise level of a piecewise-constant signal: MAD of first differences / (0.6745*sqrt 2),
    estimated in windows of ``width`` samples and taken at the ``quantile``-th percentile over the windows. A
    single global MAD is dominated by the calmest stretch: a take whose neutral is rock steady and whose
    surprise jitters then gets a penalty too small for the surprise, which falls apart into many segments."""
    if len(x) < 3:
        return 1e-3
    d = np.diff(x, axis=0)
    ests = []
    for s in range(0, max(1, len(d) - width + 1), max(1, width // 2)):
        w = d[s : s + width]
        mad = np.median(np.abs(w - np.median(w, axis=0)), axis=0)
        ests.append(np.sqrt(np.mean((mad / (0.6745 * math.sqrt(2))) ** 2)))
    return float(max(np.percentile(ests, quantile), 1e-3))


def segment(x: np.ndarray, penalty: float, min_size: int = 2) -> list[tuple[int, int]]:
    """Exact penalised least-squares segmentation of ``x`` (T, D): the partition minimising
    sum(segment costs) + penalty * (number of segments). PELT pruning keeps it near linear in T."""
    t_len = len(x)
    if t_len == 0:
        return []
    min_size = max(1, min(min_size, t_len))
    s1 = np.vstack([np.zeros((1, x.shape[1])), np.cumsum(x, axis=0)])
    s2 = np.concatenate([[0.0], np.cumsum((x * x).sum(axis=1))])

    def cost(starts: np.ndarray, end: int) -> np.ndarray:
        n = end - starts
        seg = s1[end] - s1[starts]
        return s2[end] - s2[starts] - (seg * seg).sum(axis=1) / n

    best = np.full(t_len + 1, np.inf)
    best[0] = -penalty
    prev = np.zeros(t_len + 1, dtype=np.int64)
    candidates = np.array([0], dtype=np.int64)
    for end in range(min_size, t_len + 1):
        ok = candidates[end - candidates >= min_size]
        if len(ok) == 0:
            continue
        c = best[ok] + cost(ok, end) + penalty
        j = int(np.argmin(c))
        best[end], prev[end] = c[j], ok[j]
        # PELT: a start that cannot beat the best even before paying its penalty never will later.
        keep = best[ok] + cost(ok, end) <= best[end]
        candidates = np.concatenate([candidates[end - candidates < min_size], ok[keep], [end]])
    if not np.isfinite(best[t_len]):
        return [(0, t_len)]
    bounds, end = [], t_len
    while end > 0:
        start = int(prev[end])
        bounds.append((start, end))
        end = start
    return bounds[::-1]


def drop_transitions(x: np.ndarray, segs: list[tuple[int, int]], max_len: int) -> list[tuple[int, int]]:
    """Remove segments that are only the way from one expression to the next: short, with a mean that lies on
    the line between the neighbouring segments' means. Their frames are left to interpolation (no key). A short
    segment whose mean sits at one end of that line is a piece of the neighbouring hold: merged into it."""
    segs = list(segs)
    while len(segs) > 2:
        means = [x[a:b].mean(axis=0) for a, b in segs]
        best, best_r, best_t = -1, 0.25, 0.5
        for i in range(1, len(segs) - 1):
            a, b = segs[i]
            if b - a > max_len:
                continue
            p, n = means[i - 1], means[i + 1]
            jump = n - p
            norm = float(jump @ jump)
            if norm < 1e-12:
                continue
            t = min(1.0, max(0.0, float((means[i] - p) @ jump) / norm))
            r = float(np.linalg.norm(means[i] - (p + t * jump))) / math.sqrt(norm)
            if r < best_r:
                best, best_r, best_t = i, r, t
        if best < 0:
            break
        if best_t <= 0.15:  # the end of the previous hold
            segs[best - 1] = (segs[best - 1][0], segs[best][1])
        elif best_t >= 0.85:  # the start of the next hold
            segs[best + 1] = (segs[best][0], segs[best + 1][1])
        del segs[best]
    return segs


def _interpolate(keys: list[Key], t_len: int) -> np.ndarray:
    idx = np.array([k.index for k in keys], dtype=np.float64)
    vals = np.stack([k.value for k in keys])
    t = np.arange(t_len, dtype=np.float64)
    return np.stack([np.interp(t, idx, vals[:, d]) for d in range(vals.shape[1])], axis=1)


def _report(x: np.ndarray, keys: list[Key]) -> dict:
    sparse = _interpolate(keys, len(x))
    tv = 0.5 * np.abs(x - sparse).sum(axis=1)
    return {
        "dense_keys": int(len(x)),
        "sparse_keys": len(keys),
        "key_ratio": round(len(keys) / max(1, len(x)), 4),
        "tv_error": round(float(tv.mean()), 4),
        "tv_error_max": round(float(tv.max()), 4),
        "label_agreement": round(float((x.argmax(1) == sparse.argmax(1)).mean()), 4),
    }


def key_poses(
    frames: list[int] | np.ndarray,
    probs: np.ndarray,
    labels: tuple[str, ...],
    candidates: list[list[tuple[str, float]] | None] | None = None,
    config: KeyPoseConfig | None = None,
) -> KeyPoseResult:
    """Key poses for a take. ``probs``: (T, D) expression distributions of the sampled frames (rows of NaN or
    frames left out for "no face" are the caller's business: pass only frames with a face); ``frames``: their
    frame numbers; ``candidates``: optional per-frame retrieval candidates [(pose id, score)], lower is better."""
    cfg = config or KeyPoseConfig()
    x = np.asarray(probs, dtype=np.float64)
    frames = np.asarray(frames, dtype=np.int64)
    if x.ndim != 2 or len(x) != len(frames) or len(x) == 0:
        raise ValueError("probs must be (T, D) with one frame number per row, T >= 1")
    if not np.isfinite(x).all():
        raise ValueError("probs must be finite")
    xs = _moving_median(x, cfg.smooth)
    sigma = noise_sigma(x)  # on the raw trajectory: smoothing correlates neighbours and hides the noise
    c = math.exp(math.log(8.0) + (math.log(0.5) - math.log(8.0)) * min(1.0, max(0.0, cfg.density)))
    penalty = c * sigma**2 * x.shape[1] * math.log(max(len(x), 2))
    segs = segment(x, penalty, cfg.min_segment)

    segs = drop_transitions(x, segs, max_len=3 * cfg.min_segment)
    keys: list[Key] = []
    for s, (a, b) in enumerate(segs):
        mean = xs[a:b].mean(axis=0)
        d = np.linalg.norm(xs[a:b] - mean, axis=1)
        # within the noise of the hold (its median spread), and never stricter than the take's noise level
        thr = max(cfg.arrival_tolerance * float(np.median(d)), 1.5 * sigma * math.sqrt(x.shape[1])) + 1e-9
        inside = np.flatnonzero(d <= thr)
        arrive, release = a + int(inside[0]), a + int(inside[-1])
        label = labels[int(mean.argmax())]
        pose = _segment_pose(candidates, arrive, release + 1) if candidates is not None else None
        keys.append(Key(arrive, int(frames[arrive]), "key", label, mean, pose, s))
        if release - arrive >= cfg.min_hold:
            keys.append(Key(release, int(frames[release]), "hold", label, mean, pose, s))
    for _ in range(cfg.breakdowns):
        sparse = _interpolate(keys, len(x))
        err = 0.5 * np.abs(xs - sparse).sum(axis=1)
        taken = {k.index for k in keys}
        err[list(taken)] = -1
        i = int(err.argmax())
        if err[i] <= 0.25:  # nothing strays far: no breakdown needed
            break
        pose = _segment_pose(candidates, i, i + 1) if candidates is not None else None
        keys.append(Key(i, int(frames[i]), "breakdown", labels[int(xs[i].argmax())], xs[i], pose))
        keys.sort(key=lambda k: k.index)
    return KeyPoseResult(keys=keys, segments=segs, report={**_report(x, keys), "segments": len(segs)})


def _segment_pose(candidates: list, start: int, end: int) -> str | None:
    """The pose with the best mean score over a span's frames (a pose missing from a frame's list scores as
    that frame's worst candidate)."""
    frames = [c for c in candidates[start:end] if c]
    totals: dict[str, list[float]] = {p: [] for f in frames for p, _ in f}
    for cands in frames:
        worst = max(s for _, s in cands)
        present = dict(cands)
        for pid, scores in totals.items():
            scores.append(present.get(pid, worst))
    if not totals:
        return None
    return min(totals, key=lambda p: (float(np.mean(totals[p])), p))
