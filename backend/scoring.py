"""The DeepExpr retrieval score: one function for the server (``backend/retrieval.py``) and the evaluation
(``training/evaluate_retrieval.py``).

    phi = sum over the registered distances of  weight * distance(query, library entry)

Distances, in ``DISTANCES`` (name -> the ``RetrievalWeights`` field that scales it, and the function):
- ``js`` (weight ``alpha``): the Jensen-Shannon distance (scipy's ``jensenshannon``: square root of the JS
  divergence, natural log) between normalized next-to-last-layer features (ReLU features summing to one);
- ``geo`` (weight ``beta``): the L2 distance between geometric feature vectors (``backend.geometry``), each
  z-scored within its own domain (human statistics for queries, the library's own for its entries: toon
  proportions differ from human ones), divided by sqrt(#features). Library entries without geometry take
  the median of their query's other distances.

Adding a distance: a function ``(query: Features, library: Features) -> (Q, N)``, its weight field in
``RetrievalWeights``, and one line in ``DISTANCES``.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, fields

import numpy as np

from deepexpr_blender.core.vocabulary import DEFAULT_ALPHA, DEFAULT_BETA

from .config import option
from .limits import MAX_WEIGHT

GEOMETRY_STATS = os.path.join(os.path.dirname(__file__), "assets", "geometry_stats.json")
EPS = 1e-12
# Libraries with at least this many entries with geometry z-score it with their own statistics.
MIN_OWN_STATS = 5


def _weight(text: str) -> float:
    v = float(text)
    if not 0 <= v <= MAX_WEIGHT:  # NaN fails too
        raise ValueError(f"need a number in 0..{MAX_WEIGHT:g}")
    return v


@dataclass(frozen=True)
class RetrievalWeights:
    """How much each distance counts in the score (the ``retrieve`` options and params)."""

    alpha: float = option(DEFAULT_ALPHA, "weight of the JS feature distance", parse=_weight)
    beta: float = option(DEFAULT_BETA, "weight of the geometric landmark distance", parse=_weight)


@dataclass
class Features:
    """One side of a comparison: Q queries or N library entries."""

    dist: np.ndarray  # (n, D) feature distributions (``to_distribution``)
    geometry: np.ndarray | None  # (n, F) z-scored geometric features; NaN rows where unknown; None: none at all


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


# ---------------------------------------------------------------------------------------------- distances
def js_distance(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Jensen-Shannon distance between distribution ``p`` (D,) and each row of ``q`` (N, D), natural log;
    equal to ``scipy.spatial.distance.jensenshannon(p, q_i)`` for each row."""
    from scipy.special import rel_entr  # what scipy's jensenshannon uses: 0 * log(0 / m) = 0

    p = np.asarray(p, dtype=np.float64)[None]
    q = np.asarray(q, dtype=np.float64)
    m = 0.5 * (p + q)
    return np.sqrt(np.maximum(0.5 * (rel_entr(p, m).sum(axis=1) + rel_entr(q, m).sum(axis=1)), 0.0))


def js_matrix(query: Features, library: Features) -> np.ndarray:
    """(Q, N) Jensen-Shannon distances."""
    return np.stack([js_distance(p, library.dist) for p in query.dist])


def geo_matrix(query: Features, library: Features) -> np.ndarray:
    """(Q, N) geometric distances; zeros when either side has no geometry."""
    if query.geometry is None or library.geometry is None:
        return np.zeros((len(query.dist), len(library.dist)))
    qg, lg = query.geometry, library.geometry
    geo = np.linalg.norm(qg[:, None] - lg[None], axis=2) / np.sqrt(qg.shape[1])
    missing = np.isnan(geo)
    if missing.any():
        for row, miss in zip(geo, missing):
            row[miss] = np.median(row[~miss]) if (~miss).any() else 0.0
    return geo


@dataclass(frozen=True)
class Distance:
    weight: str  # the RetrievalWeights field that scales it
    fn: Callable[[Features, Features], np.ndarray]  # (query, library) -> (Q, N)


DISTANCES: dict[str, Distance] = {
    "js": Distance("alpha", js_matrix),
    "geo": Distance("beta", geo_matrix),
}
assert {d.weight for d in DISTANCES.values()} <= {f.name for f in fields(RetrievalWeights)}


def distances(query: Features, library: Features) -> dict[str, np.ndarray]:
    """Every registered distance between each query and each library entry, (Q, N) each."""
    return {name: d.fn(query, library) for name, d in DISTANCES.items()}


def combine(dists: dict[str, np.ndarray], weights: RetrievalWeights) -> np.ndarray:
    """The score phi (Q, N): the weighted sum of the distances; lower is closer."""
    total = None
    for name, d in DISTANCES.items():
        term = getattr(weights, d.weight) * dists[name]
        total = term if total is None else total + term
    return total


def score(query: Features, library: Features, weights: RetrievalWeights) -> dict[str, np.ndarray]:
    """The distances and, under ``"score"``, their weighted sum: (Q, N) each."""
    dists = distances(query, library)
    return {**dists, "score": combine(dists, weights)}
