"""DeepExpr retrieval: rank a character pose library against a human face.

The score is ``backend.scoring`` (alpha * JS + beta * geo). JS retrieves a shortlist, the combined score
re-sorts it. Libraries above ``EXACT_LIMIT`` entries are first narrowed by the Bhattacharyya coefficient
(one matrix-vector product on sqrt-features), then scored exactly.

A ``Retriever`` serves one engine and owns its ``IndexCache``: library embeddings are cached in memory (keyed
by a cheap file fingerprint and the model's checksum) and on disk (keyed by the library's content hash and
the model's checksum).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import numpy as np

from .align import align_face
from .errors import DeepExprError
from .geometry import FEATURE_NAMES
from .library import CACHE_DIR, Library, load_library
from .scoring import Features, RetrievalWeights, js_distance, library_geometry, query_geometry, score, to_distribution

log = logging.getLogger(__name__)

EXACT_LIMIT = 5000  # above this many entries, shortlist by Bhattacharyya before exact JS


@dataclass
class LibraryIndex:
    library: Library
    dist: np.ndarray  # (N, D) float32 feature distributions
    sqrt_dist: np.ndarray  # (N, D) float32, for the Bhattacharyya shortlist
    geometry: np.ndarray  # (N, F) z-scored in the library's domain; NaN rows where unknown
    key: str


class IndexCache:
    """Library indexes in memory, keyed by (library fingerprint, model checksum)."""

    def __init__(self) -> None:
        self._indexes: dict[tuple[str, str], LibraryIndex] = {}

    def get(self, key: tuple[str, str]) -> LibraryIndex | None:
        return self._indexes.get(key)

    def put(self, key: tuple[str, str], index: LibraryIndex) -> None:
        self._indexes[key] = index

    def clear(self) -> None:
        self._indexes.clear()

    def __len__(self) -> int:
        return len(self._indexes)


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


def library_embeddings(engine, lib: Library, cache_dir: str | None = None) -> tuple[np.ndarray, str]:
    """(embeddings (N, D), cache key): from the disk cache (keyed by the content hash and the model
    checksum), or computed and written there."""
    model = engine.retrieval_model
    key = f"{lib.content_hash()[:20]}-{model.sha256[:20]}"
    path = os.path.join(cache_dir or CACHE_DIR, "embeddings", key + ".npz")
    if os.path.exists(path):
        try:
            with np.load(path) as z:
                emb = z["emb"]
            if emb.shape[0] == len(lib.entries):
                return emb, key
        except (OSError, ValueError, KeyError):
            pass  # a damaged cache file is rebuilt
    size = int(model.card.input.get("size", 48))
    crops = [_entry_crop(engine, lib, i, size) for i in range(len(lib.entries))]
    emb = np.concatenate([engine.embed_crops(crops[i : i + 256], model) for i in range(0, len(crops), 256)])
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = path + ".tmp.npz"
        np.savez(tmp, emb=emb)
        os.replace(tmp, path)
    except OSError as exc:  # an unwritable cache costs time on the next start, not this answer
        log.warning("cannot write the embedding cache %s (%s); continuing without it", path, exc)
    return emb, key


def build_index(engine, lib: Library, cache_dir: str | None = None) -> LibraryIndex:
    """The library's feature distributions and z-scored geometry."""
    emb, key = library_embeddings(engine, lib, cache_dir)
    dist = to_distribution(emb).astype(np.float32)
    geo = np.full((len(lib.entries), len(FEATURE_NAMES)), np.nan)
    for i, e in enumerate(lib.entries):
        if e.get("geometry") is not None and len(e["geometry"]) == len(FEATURE_NAMES):
            geo[i] = e["geometry"]
    return LibraryIndex(library=lib, dist=dist, sqrt_dist=np.sqrt(dist), geometry=library_geometry(geo), key=key)


def rank(
    index: LibraryIndex,
    query: Features,
    top_k: int = 5,
    weights: RetrievalWeights | None = None,
    shortlist: int | None = None,
) -> list[dict]:
    """Top-k entries by the score (``backend.scoring``) over the JS shortlist of one query."""
    weights = weights or RetrievalWeights()
    n = len(index.dist)
    top_k = max(1, min(top_k, n))
    qdist = query.dist[0]
    cand = np.arange(n)
    if n > EXACT_LIMIT:
        bc = index.sqrt_dist @ np.sqrt(qdist).astype(np.float32)  # Bhattacharyya coefficient
        m = min(n, max(1000, 20 * top_k))
        cand = np.argpartition(-bc, m - 1)[:m]
    js = js_distance(qdist, index.dist[cand])
    m = min(len(cand), shortlist or max(4 * top_k, 20))
    short = np.argpartition(js, m - 1)[:m] if m < len(cand) else np.arange(len(cand))
    idx = cand[short]
    s = score(query, Features(index.dist[idx], index.geometry[idx]), weights)
    js_s, geo, phi = s["js"][0], s["geo"][0], s["score"][0]
    order = np.lexsort((js_s, phi))[:top_k]
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
                "score": round(float(phi[o]), 6),
            }
        )
    return out


def query_features(engine, fa) -> tuple[Features, dict]:
    """(features, classification) of a human face analysis."""
    model = engine.retrieval_model
    size = int(model.card.input.get("size", 48))
    emb = engine.embed_crops([fa.aligned(size).crop], model)[0]
    geo = engine.geometry(fa).astype(np.float64)
    return Features(to_distribution(emb)[None], query_geometry(geo)[None]), engine.classify_analysis(fa)


class Retriever:
    """Retrieval for one engine; owns the engine's library index cache."""

    def __init__(self, engine, cache_dir: str | None = None):
        self.engine = engine
        self.cache_dir = cache_dir
        self.cache = IndexCache()

    def index(self, lib: Library) -> LibraryIndex:
        """The library's index: from memory when its files are unchanged, else built (``build_index``)."""
        memo = (lib.fingerprint(), self.engine.retrieval_model.sha256)
        index = self.cache.get(memo)
        if index is None:
            index = build_index(self.engine, lib, self.cache_dir)
            self.cache.put(memo, index)
        return index

    def retrieve(
        self,
        image,
        library: str | Library,
        top_k: int = 5,
        weights: RetrievalWeights | None = None,
        box=None,
    ) -> dict:
        weights = weights or RetrievalWeights()
        lib = library if isinstance(library, Library) else load_library(library)
        index = self.index(lib)
        fa = self.engine.analyze(image, box)
        query, cls = query_features(self.engine, fa)
        return {
            **fa.describe(),
            "label": cls["label"],
            "probabilities": cls["probabilities"],
            "library": lib.root,
            "library_size": len(lib.entries),
            "model": self.engine.retrieval_model.name,
            "alpha": weights.alpha,
            "beta": weights.beta,
            "candidates": rank(index, query, top_k=top_k, weights=weights),
        }
