"""DeepExpr retrieval: rank a character pose library against a human face.

Score, as in the paper: phi = alpha * JS + beta * geo, where
- JS is the Jensen-Shannon distance (scipy's ``jensenshannon`` semantics: the square root of the JS
  divergence, natural log) between the normalized next-to-last-layer features of the query and of each
  library entry (ReLU features, normalized to sum to one);
- geo is the L2 distance between geometric feature vectors (``backend.geometry``), each z-scored within its
  own domain (human statistics for the query, the library's own for its entries, since toon proportions
  differ from human ones), divided by sqrt(#features).
JS retrieves a shortlist, the combined score re-sorts it. Libraries above ``EXACT_LIMIT`` entries are first
narrowed by the Bhattacharyya coefficient (one matrix-vector product on sqrt-features), then scored exactly.

Library embeddings are cached in memory and on disk, keyed by the library's content hash and the model's
checksum.
"""

from __future__ import annotations

import functools
import json
import logging
import os
from dataclasses import dataclass

import numpy as np

from deepexpr_blender.core.vocabulary import DEFAULT_ALPHA, DEFAULT_BETA

from .align import align_face
from .errors import DeepExprError
from .geometry import FEATURE_NAMES
from .library import CACHE_DIR, Library, load_library

log = logging.getLogger(__name__)

EXACT_LIMIT = 5000  # above this many entries, shortlist by Bhattacharyya before exact JS
GEOMETRY_STATS = os.path.join(os.path.dirname(__file__), "assets", "geometry_stats.json")
EPS = 1e-12


def to_distribution(e: np.ndarray) -> np.ndarray:
    """Rows of non-negative features -> probability distributions (an all-zero row becomes uniform)."""
    e = np.clip(np.asarray(e, dtype=np.float64), 0, None)
    s = e.sum(axis=-1, keepdims=True)
    d = e.shape[-1]
    return np.where(s > EPS, e / np.maximum(s, EPS), 1.0 / d)


def js_distance(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Jensen-Shannon distance between distribution ``p`` (D,) and each row of ``q`` (N, D), natural log;
    equal to ``scipy.spatial.distance.jensenshannon(p, q_i)`` for each row."""
    from scipy.special import rel_entr  # what scipy's jensenshannon uses: 0 * log(0 / m) = 0

    p = np.asarray(p, dtype=np.float64)[None]
    q = np.asarray(q, dtype=np.float64)
    m = 0.5 * (p + q)
    return np.sqrt(np.maximum(0.5 * (rel_entr(p, m).sum(axis=1) + rel_entr(q, m).sum(axis=1)), 0.0))


@functools.lru_cache(maxsize=1)
def human_geometry_stats() -> tuple[np.ndarray, np.ndarray]:
    with open(GEOMETRY_STATS, encoding="utf-8") as f:
        s = json.load(f)["human"]
    return np.asarray(s["mean"], np.float64), np.asarray(s["std"], np.float64)


@dataclass
class LibraryIndex:
    library: Library
    dist: np.ndarray  # (N, D) float32 feature distributions
    sqrt_dist: np.ndarray  # (N, D) float32, for the Bhattacharyya shortlist
    geometry: np.ndarray  # (N, F) z-scored in the library's domain; NaN rows where unknown
    key: str


def _entry_crop(engine, lib: Library, i: int, size: int) -> np.ndarray:
    """The aligned crop of a library thumbnail: from its stored landmarks, else from dlib, else a centre crop
    (thumbnails are framed on the face)."""
    import cv2

    from .imageio import decode_image

    dec = decode_image(lib.thumbnail(i))
    sem = lib.semantic(i)
    if sem is not None:
        return align_face(dec.rgb, sem * dec.scale, size=size).crop
    try:
        return engine.analyze(dec).aligned(size).crop
    except DeepExprError:
        gray = cv2.cvtColor(dec.rgb, cv2.COLOR_RGB2GRAY)
        return cv2.resize(gray, (size, size), interpolation=cv2.INTER_AREA)


def _zscore(geo: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    return (geo - mean) / np.maximum(std, 1e-6)


def build_index(engine, lib: Library, cache_dir: str | None = None) -> LibraryIndex:
    """The library's embeddings and geometry, from memory (keyed by a cheap file fingerprint), the disk cache
    (keyed by the content hash and the model checksum), or computed."""
    model = engine.retrieval_model
    memo = (lib.fingerprint(), model.sha256)
    cached = engine._index_cache.get(memo)
    if cached is not None:
        return cached
    key = f"{lib.content_hash()[:20]}-{model.sha256[:20]}"
    path = os.path.join(cache_dir or CACHE_DIR, "embeddings", key + ".npz")
    emb = None
    if os.path.exists(path):
        try:
            with np.load(path) as z:
                emb = z["emb"]
            if emb.shape[0] != len(lib.entries):
                emb = None
        except (OSError, ValueError, KeyError):
            emb = None  # a damaged cache file is rebuilt
    if emb is None:
        size = int(model.card.input.get("size", 48))
        crops = [_entry_crop(engine, lib, i, size) for i in range(len(lib.entries))]
        emb = np.concatenate([engine.embed_crops(crops[i : i + 256], model) for i in range(0, len(crops), 256)])
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = path + ".tmp.npz"
        np.savez(tmp, emb=emb)
        os.replace(tmp, path)
    dist = to_distribution(emb).astype(np.float32)
    geo = np.full((len(lib.entries), len(FEATURE_NAMES)), np.nan)
    for i, e in enumerate(lib.entries):
        if e.get("geometry") is not None and len(e["geometry"]) == len(FEATURE_NAMES):
            geo[i] = e["geometry"]
    known = ~np.isnan(geo).any(axis=1)
    if known.sum() >= 5:
        mean, std = geo[known].mean(axis=0), geo[known].std(axis=0)
    else:
        mean, std = human_geometry_stats()
    index = LibraryIndex(library=lib, dist=dist, sqrt_dist=np.sqrt(dist), geometry=_zscore(geo, mean, std), key=key)
    engine._index_cache[memo] = index
    return index


def rank(
    index: LibraryIndex,
    query_dist: np.ndarray,
    query_geo: np.ndarray | None,
    top_k: int = 5,
    alpha: float = DEFAULT_ALPHA,
    beta: float = DEFAULT_BETA,
    shortlist: int | None = None,
) -> list[dict]:
    """Top-k entries by phi = alpha*JS + beta*geo over the JS shortlist."""
    n = len(index.dist)
    top_k = max(1, min(top_k, n))
    cand = np.arange(n)
    if n > EXACT_LIMIT:
        bc = index.sqrt_dist @ np.sqrt(query_dist).astype(np.float32)  # Bhattacharyya coefficient
        m = min(n, max(1000, 20 * top_k))
        cand = np.argpartition(-bc, m - 1)[:m]
    js = js_distance(query_dist, index.dist[cand])
    m = min(len(cand), shortlist or max(4 * top_k, 20))
    short = np.argpartition(js, m - 1)[:m] if m < len(cand) else np.arange(len(cand))
    js_s, idx = js[short], cand[short]
    if query_geo is not None and beta != 0:
        g = index.geometry[idx]
        geo = np.linalg.norm(g - query_geo, axis=1) / np.sqrt(g.shape[1])
        if np.isnan(geo).any():
            fill = np.nanmedian(geo) if (~np.isnan(geo)).any() else 0.0
            geo = np.where(np.isnan(geo), fill, geo)
    else:
        geo = np.zeros_like(js_s)
    score = alpha * js_s + beta * geo
    order = np.lexsort((js_s, score))[:top_k]
    out = []
    for r, o in enumerate(order):
        i = int(idx[o])
        e = index.library.entries[i]
        out.append(
            {
                "rank": r + 1,
                "id": e["id"],
                "label": e.get("label"),
                "thumbnail": index.library.thumbnail(i),
                "pose": e["pose"],
                "js": round(float(js_s[o]), 6),
                "geo": round(float(geo[o]), 6),
                "score": round(float(score[o]), 6),
            }
        )
    return out


def query_features(engine, fa) -> tuple[np.ndarray, np.ndarray, dict]:
    """(feature distribution, z-scored geometry, classification) of a human face analysis."""
    model = engine.retrieval_model
    size = int(model.card.input.get("size", 48))
    emb = engine.embed_crops([fa.aligned(size).crop], model)[0]
    geo = engine.geometry(fa).astype(np.float64)
    mean, std = human_geometry_stats()
    return to_distribution(emb), _zscore(geo, mean, std), engine.classify_analysis(fa)


def retrieve(
    engine,
    image: str,
    library: str | Library,
    top_k: int = 5,
    alpha: float = DEFAULT_ALPHA,
    beta: float = DEFAULT_BETA,
    box=None,
) -> dict:
    lib = library if isinstance(library, Library) else load_library(library)
    index = build_index(engine, lib)
    fa = engine.analyze(image, box)
    qdist, qgeo, cls = query_features(engine, fa)
    cands = rank(index, qdist, qgeo, top_k=top_k, alpha=alpha, beta=beta)
    return {
        **fa.describe(),
        "label": cls["label"],
        "probabilities": cls["probabilities"],
        "library": lib.root,
        "library_size": len(lib.entries),
        "model": engine.retrieval_model.name,
        "alpha": alpha,
        "beta": beta,
        "candidates": cands,
    }
