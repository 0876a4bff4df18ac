"""The DeepExpr retrieval score: one function for the server (``backend/retrieval.py``) and the evaluations
(``training/evaluate_retrieval.py``, ``training/rig_scoring.py``, ``training/evaluate_rigs.py``).

    phi = sum over the registered distances of  weight * distance(query, library entry)

Distances, in ``DISTANCES`` (name -> the ``RetrievalWeights`` field that scales it, and the function):
- ``js`` (weight ``alpha``): the Jensen-Shannon distance (scipy's ``jensenshannon``: square root of the JS
  divergence, natural log) between normalized next-to-last-layer features (ReLU features summing to one);
- ``geo`` (weight ``beta``): the L2 distance between geometric feature vectors (``backend.geometry``), each
  z-scored within its own domain (human statistics for queries, the library's own for its entries: toon
  proportions differ from human ones), divided by sqrt(#features);
- ``label`` (weight ``gamma``): the Jensen-Shannon distance between the face's 7 class probabilities (the
  human network) and the entry's *declared* expression: its label at its intensity, the rest on neutral (a
  joy at 0.5 is half joy, half neutral). Libraries whose entries carry labels (rig libraries, image folders
  named after expressions, the built-in characters) get it; an entry without a label takes the median;
- ``geo_rel`` (weight ``delta``): geometry relative to a neutral on both sides: the face minus the actor's
  own neutral (``neutral`` of a retrieve request, "Capture my neutral"), divided by the spread of human
  expression changes (``assets/expression_deltas.json``: CK+ peak minus own neutral); the entry minus its
  character's neutral entry, divided by the library's own spread of changes. Zero without a neutral.

Entries whose part is unknown (no landmarks, no label, no neutral to compare with) take the median of their
query's other distances for that part, so they are neither favoured nor buried.

With a captured neutral, ``calibration`` (0..1) also removes the resting face's bias from its class
probabilities before the ``label`` distance: p - calibration * (p_neutral - onehot(neutral)), clipped and
renormalised (a stern resting face that the network calls 30 % anger no longer pulls anger poses).

Adding a distance: a function ``(query: Features, library: Features) -> (Q, N)``, its weight field in
``RetrievalWeights``, and one line in ``DISTANCES``.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields

import numpy as np

from deepexpr_blender.core.vocabulary import (
    DEFAULT_ALPHA,
    DEFAULT_BETA,
    DEFAULT_CALIBRATION,
    DEFAULT_DELTA,
    DEFAULT_GAMMA,
    LABELS,
)

from .config import option
from .limits import MAX_WEIGHT

ASSETS = os.path.join(os.path.dirname(__file__), "assets")
GEOMETRY_STATS = os.path.join(ASSETS, "geometry_stats.json")
EXPRESSION_DELTAS = os.path.join(ASSETS, "expression_deltas.json")
EPS = 1e-12
# Libraries with at least this many entries with geometry z-score it with their own statistics.
MIN_OWN_STATS = 5
NEUTRAL = LABELS.index("neutral")


def _weight(text: str) -> float:
    v = float(text)
    if not 0 <= v <= MAX_WEIGHT:  # NaN fails too
        raise ValueError(f"need a number in 0..{MAX_WEIGHT:g}")
    return v


def _fraction(text: str) -> float:
    v = _weight(text)
    if v > 1:
        raise ValueError("need a number in 0..1")
    return v


@dataclass(frozen=True)
class RetrievalWeights:
    """How much each distance counts in the score (the ``retrieve`` options and params)."""

    alpha: float = option(DEFAULT_ALPHA, "weight of the JS feature distance", parse=_weight)
    beta: float = option(DEFAULT_BETA, "weight of the geometric landmark distance", parse=_weight)
    gamma: float = option(
        DEFAULT_GAMMA, "weight of the declared-label distance (class probabilities vs the entry's label)", parse=_weight
    )
    delta: float = option(
        DEFAULT_DELTA, "weight of the neutral-relative geometric distance (needs the actor's neutral)", parse=_weight
    )
    calibration: float = option(
        DEFAULT_CALIBRATION,
        "how much of the actor's neutral class bias to remove (0..1; needs a neutral)",
        parse=_fraction,
    )


@dataclass
class Features:
    """One side of a comparison: Q queries or N library entries."""

    dist: np.ndarray  # (n, D) feature distributions (``to_distribution``)
    geometry: np.ndarray | None  # (n, F) z-scored geometric features; NaN rows where unknown; None: none at all
    classes: np.ndarray | None = None  # (n, 7) LABELS order: a face's class probabilities, an entry's declared
    #                                    expression; NaN rows where unknown; None: none at all
    relative: np.ndarray | None = None  # (n, F) geometry relative to a neutral, over its spread; NaN / None as above


# ----------------------------------------------------------------------------------------------- features
def to_distribution(e: np.ndarray) -> np.ndarray:
    """Rows of non-negative features -> probability distributions (an all-zero row becomes uniform)."""
    e = np.clip(np.asarray(e, dtype=np.float64), 0, None)
    s = e.sum(axis=-1, keepdims=True)
    d = e.shape[-1]
    return np.where(s > EPS, e / np.maximum(s, EPS), 1.0 / d)


def zscore(geo: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    return (geo - mean) / np.maximum(std, 1e-6)


@functools.lru_cache(maxsize=1)
def human_geometry_stats() -> tuple[np.ndarray, np.ndarray]:
    """(mean, std) of the geometric features over human faces (``assets/geometry_stats.json``)."""
    with open(GEOMETRY_STATS, encoding="utf-8") as f:
        s = json.load(f)["human"]
    return np.asarray(s["mean"], np.float64), np.asarray(s["std"], np.float64)


def query_geometry(geo: np.ndarray) -> np.ndarray:
    """Human faces' geometric features, z-scored with the human statistics."""
    mean, std = human_geometry_stats()
    return zscore(geo, mean, std)


def library_geometry(geo: np.ndarray) -> np.ndarray:
    """A library's geometric features (N, F; NaN rows where unknown), z-scored with its own statistics (the
    human ones when fewer than ``MIN_OWN_STATS`` entries have geometry)."""
    known = ~np.isnan(geo).any(axis=1)
    if known.sum() >= MIN_OWN_STATS:
        mean, std = geo[known].mean(axis=0), geo[known].std(axis=0)
    else:
        mean, std = human_geometry_stats()
    return zscore(geo, mean, std)


# ------------------------------------------------------------------------------------- declared expressions
def declared_distribution(label: str | None, intensity: float | None = None) -> np.ndarray:
    """An entry's declared expression as a 7-class distribution (LABELS order): its label at ``intensity``
    (1.0 when not given), the rest on neutral; NaN for an entry without a canonical label."""
    if label not in LABELS:
        return np.full(len(LABELS), np.nan)
    d = np.zeros(len(LABELS))
    s = 1.0 if label == "neutral" or intensity is None else float(np.clip(intensity, 0.0, 1.0))
    d[LABELS.index(label)] += s
    d[NEUTRAL] += 1.0 - s
    return d


def library_classes(entries: Sequence[dict]) -> np.ndarray | None:
    """(N, 7) declared distributions of a library's entries; None when no entry has a label."""
    out = np.stack([declared_distribution(e.get("label"), e.get("intensity")) for e in entries])
    return None if np.isnan(out).all() else out


def probabilities_vector(probs: dict[str, float] | Sequence[float], classes: Sequence[str] = LABELS) -> np.ndarray:
    """Class probabilities (a {label: p} dict or a sequence in ``classes`` order) as a LABELS-order vector."""
    if isinstance(probs, dict):
        v = np.array([float(probs.get(c, 0.0)) for c in LABELS])
    else:
        by = dict(zip(classes, probs))
        v = np.array([float(by.get(c, 0.0)) for c in LABELS])
    return v / max(v.sum(), EPS)


def calibrate(probs: np.ndarray, neutral: np.ndarray | None, strength: float) -> np.ndarray:
    """Class probabilities (Q, 7) with ``strength`` of the actor's resting bias removed (module docstring)."""
    probs = np.atleast_2d(np.asarray(probs, dtype=np.float64))
    if neutral is None or strength <= 0:
        return probs
    bias = np.asarray(neutral, dtype=np.float64) - np.eye(len(LABELS))[NEUTRAL]
    out = np.clip(probs - strength * bias[None], 1e-4, None)
    return out / out.sum(axis=1, keepdims=True)


# --------------------------------------------------------------------------------- neutral-relative geometry
@functools.lru_cache(maxsize=1)
def human_delta_spread() -> np.ndarray:
    """(F,) typical size of an expression change in each geometric feature, for human faces: the RMS over the
    six expressions of (template + the expression's mean CK+ displacement) minus the template's features."""
    from .align import template68
    from .geometry import geometric_features
    from .landmarks import semantic_from_68

    with open(EXPRESSION_DELTAS, encoding="utf-8") as f:
        deltas = json.load(f)["deltas"]
    t = template68()
    base = geometric_features(semantic_from_68(t)).astype(np.float64)
    d = np.stack(
        [geometric_features(semantic_from_68(t + np.asarray(v))).astype(np.float64) - base for v in deltas.values()]
    )
    return np.maximum(np.sqrt((d**2).mean(axis=0)), 1e-3)


def query_relative(geo: np.ndarray, neutral_geo: np.ndarray | None) -> np.ndarray | None:
    """(Q, F) a face's raw geometry minus the actor's neutral, over the human spread; None without a neutral."""
    if neutral_geo is None:
        return None
    return (np.atleast_2d(geo) - np.asarray(neutral_geo)[None]) / human_delta_spread()


def library_relative(raw: np.ndarray, entries: Sequence[dict]) -> np.ndarray | None:
    """(N, F) each entry's raw geometry minus its character's neutral (the mean of that character's entries
    labelled neutral; a character is ``entry["character"]``, else its pose's target), over the library's own
    RMS change; NaN rows where unknown; None when no character has a neutral entry with geometry."""
    groups = [str(e.get("character") or (e.get("pose") or {}).get("target") or "") for e in entries]
    is_neutral = np.array([e.get("label") == "neutral" for e in entries], dtype=bool)
    known = ~np.isnan(raw).any(axis=1)
    out = np.full_like(raw, np.nan, dtype=np.float64)
    _, group = np.unique(np.asarray(groups, dtype=object), return_inverse=True)
    order = np.argsort(group, kind="stable")
    bounds = np.flatnonzero(np.diff(group[order])) + 1
    for idx in np.split(order, bounds):  # one character at a time
        neutral = idx[known[idx] & is_neutral[idx]]
        if len(neutral):
            out[idx] = raw[idx] - raw[neutral].mean(axis=0)
    have = ~np.isnan(out).any(axis=1)
    if not have.any():
        return None
    moved = have & ~is_neutral
    ref = out[moved] if moved.sum() >= 2 else out[have]
    spread = np.sqrt((ref**2).mean(axis=0))
    return out / np.maximum(spread, 1e-3)


# ---------------------------------------------------------------------------------------------- distances
def js_distance(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Jensen-Shannon distance between distribution ``p`` (D,) and each row of ``q`` (N, D), natural log;
    equal to ``scipy.spatial.distance.jensenshannon(p, q_i)`` for each row."""
    from scipy.special import rel_entr  # what scipy's jensenshannon uses: 0 * log(0 / m) = 0

    p = np.asarray(p, dtype=np.float64)[None]
    q = np.asarray(q, dtype=np.float64)
    m = 0.5 * (p + q)
    return np.sqrt(np.maximum(0.5 * (rel_entr(p, m).sum(axis=1) + rel_entr(q, m).sum(axis=1)), 0.0))


def _median_fill(d: np.ndarray) -> np.ndarray:
    """Unknown (NaN) cells take the median of their row's known cells (0 when a row knows none)."""
    missing = np.isnan(d)
    if missing.any():
        for row, miss in zip(d, missing):
            row[miss] = np.median(row[~miss]) if (~miss).any() else 0.0
    return d


def js_matrix(query: Features, library: Features) -> np.ndarray:
    """(Q, N) Jensen-Shannon distances."""
    return np.stack([js_distance(p, library.dist) for p in query.dist])


def _l2(q: np.ndarray | None, lib: np.ndarray | None, n_q: int, n_lib: int) -> np.ndarray:
    if q is None or lib is None:
        return np.zeros((n_q, n_lib))
    d = np.linalg.norm(q[:, None] - lib[None], axis=2) / np.sqrt(q.shape[1])
    return _median_fill(d)


def geo_matrix(query: Features, library: Features) -> np.ndarray:
    """(Q, N) geometric distances; zeros when either side has no geometry."""
    return _l2(query.geometry, library.geometry, len(query.dist), len(library.dist))


def label_matrix(query: Features, library: Features) -> np.ndarray:
    """(Q, N) JS distance between the face's class probabilities and each entry's declared expression; zeros
    when either side has none."""
    if query.classes is None or library.classes is None:
        return np.zeros((len(query.dist), len(library.dist)))
    lib = library.classes
    known = ~np.isnan(lib).any(axis=1)
    d = np.full((len(query.classes), len(lib)), np.nan)
    if known.any():
        d[:, known] = np.stack([js_distance(p, lib[known]) for p in query.classes])
    return _median_fill(d)


def relative_matrix(query: Features, library: Features) -> np.ndarray:
    """(Q, N) distance between neutral-relative geometries; zeros without the actor's neutral."""
    return _l2(query.relative, library.relative, len(query.dist), len(library.dist))


@dataclass(frozen=True)
class Distance:
    weight: str  # the RetrievalWeights field that scales it
    fn: Callable[[Features, Features], np.ndarray]  # (query, library) -> (Q, N)


DISTANCES: dict[str, Distance] = {
    "js": Distance("alpha", js_matrix),
    "geo": Distance("beta", geo_matrix),
    "label": Distance("gamma", label_matrix),
    "geo_rel": Distance("delta", relative_matrix),
}
assert {d.weight for d in DISTANCES.values()} <= {f.name for f in fields(RetrievalWeights)}


def distances(query: Features, library: Features) -> dict[str, np.ndarray]:
    """Every registered distance between each query and each library entry, (Q, N) each."""
    return {name: d.fn(query, library) for name, d in DISTANCES.items()}


def combine(dists: dict[str, np.ndarray], weights: RetrievalWeights, only: Sequence[str] | None = None) -> np.ndarray:
    """The score phi (Q, N): the weighted sum of the distances (those named in ``only``); lower is closer."""
    total = None
    for name, d in DISTANCES.items():
        if only is not None and name not in only:
            continue
        term = getattr(weights, d.weight) * dists[name]
        total = term if total is None else total + term
    return total


def score(query: Features, library: Features, weights: RetrievalWeights) -> dict[str, np.ndarray]:
    """The distances and, under ``"score"``, their weighted sum: (Q, N) each."""
    dists = distances(query, library)
    return {**dists, "score": combine(dists, weights)}
