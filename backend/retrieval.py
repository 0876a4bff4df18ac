"""DeepExpr retrieval: rank a character pose library against a human face.

The score is ``backend.scoring`` (alpha * JS + beta * geo + gamma * label + delta * geo_rel). The parts that
need no landmarks (JS and the declared label) retrieve a shortlist; the full score, geometry included,
re-sorts it (the paper's geometric re-sort, which runs for every library: an entry's geometry is its stored
``geometry``, else computed from its stored ``landmarks``, else from landmarks found on its thumbnail:
dlib, or ``backend.character_face`` where dlib sees no face). Libraries above ``EXACT_LIMIT`` entries are
first narrowed by the Bhattacharyya coefficient (one matrix-vector product on sqrt-features).

A ``Retriever`` serves one engine and owns its ``IndexCache``: library embeddings and landmarks found on
thumbnails are cached in memory (keyed by a cheap file fingerprint and the model's checksum) and on disk
(keyed by the library's content hash, the model's checksum and ``INDEX_VERSION``).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import numpy as np

from deepexpr_blender.core import protocol

from .align import align_face
from .errors import DeepExprError
from .geometry import FEATURE_NAMES, geometric_features
from .landmarks import SEMANTIC_NAMES, semantic_from_68
from .library import CACHE_DIR, Library, load_library
from .scoring import (
    Features,
    RetrievalWeights,
    calibrate,
    combine,
    distances,
    library_classes,
    library_geometry,
    library_relative,
    probabilities_vector,
    query_geometry,
    query_relative,
    to_distribution,
)

log = logging.getLogger(__name__)

EXACT_LIMIT = 5000  # above this many entries, shortlist by Bhattacharyya before exact JS
INDEX_VERSION = "4"  # bump when what is cached per library changes (v3: landmarks found on thumbnails)
SHORTLIST_PARTS = ("js", "label")  # the parts that rank the shortlist the geometry re-sorts


@dataclass
class LibraryIndex:
    library: Library
    dist: np.ndarray  # (N, D) float32 feature distributions
    sqrt_dist: np.ndarray  # (N, D) float32, for the Bhattacharyya shortlist
    geometry: np.ndarray  # (N, F) z-scored in the library's domain; NaN rows where unknown
    key: str
    classes: np.ndarray | None = None  # (N, 7) declared expressions; NaN rows where unlabelled; None: no labels
    relative: np.ndarray | None = None  # (N, F) geometry relative to the character's neutral entry
    landmarks_from: tuple[str, ...] = ()  # per entry: stored | detected | face_box | head | none

    def features(self, idx: np.ndarray | None = None) -> Features:
        sel = slice(None) if idx is None else idx
        return Features(
            self.dist[sel],
            self.geometry[sel],
            None if self.classes is None else self.classes[sel],
            None if self.relative is None else self.relative[sel],
        )


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


def _entry_analysis(engine, lib: Library, i: int, size: int) -> tuple[np.ndarray, np.ndarray | None, str]:
    """(aligned crop, named landmarks in thumbnail pixels or None, where they came from) of a library thumbnail:
    stored landmarks, else dlib, else the character-face fallback, else a centre crop (thumbnails are framed
    on the face)."""
    import cv2

    from .character_face import character_points68
    from .imageio import decode_image

    dec = decode_image(lib.thumbnail(i))
    sem = lib.semantic(i)
    if sem is not None:
        return align_face(dec.rgb, sem * dec.scale, size=size).crop, sem, "stored"
    box = lib.entries[i].get("face_box")
    box = None if box is None else [v * dec.scale for v in box]
    found = character_points68(engine, dec.rgb, face_box=box)
    if found is not None:
        pts, how = found
        sem = semantic_from_68(pts)
        return align_face(dec.rgb, sem, size=size).crop, sem / dec.scale, how
    gray = cv2.cvtColor(dec.rgb, cv2.COLOR_RGB2GRAY)
    return cv2.resize(gray, (size, size), interpolation=cv2.INTER_AREA), None, "none"


def library_embeddings(engine, lib: Library, cache_dir: str | None = None) -> tuple[np.ndarray, np.ndarray, list, str]:
    """(embeddings (N, D), named landmarks (N, 23, 2) with NaN where none, where each came from, cache key):
    from the disk cache (keyed by the content hash, the model checksum and ``INDEX_VERSION``), or computed and
    written there."""
    model = engine.retrieval_model
    key = f"{lib.content_hash()[:20]}-{model.sha256[:20]}-v{INDEX_VERSION}"
    path = os.path.join(cache_dir or CACHE_DIR, "embeddings", key + ".npz")
    if os.path.exists(path):
        try:
            with np.load(path) as z:
                emb, sem, how = z["emb"], z["sem"], [str(h) for h in z["how"]]
            if emb.shape[0] == len(lib.entries) == len(sem) == len(how) and np.isfinite(emb).all():
                return emb, sem, how, key
        except (OSError, ValueError, KeyError):
            pass  # a damaged cache file is rebuilt
    size = int(model.card.input.get("size", 48))
    crops, sems, how = [], [], []
    for i in range(len(lib.entries)):
        crop, sem, h = _entry_analysis(engine, lib, i, size)
        crops.append(crop)
        sems.append(np.full((len(SEMANTIC_NAMES), 2), np.nan) if sem is None else sem)
        how.append(h)
    emb = np.concatenate([engine.embed_crops(crops[i : i + 256], model) for i in range(0, len(crops), 256)])
    sem = np.stack(sems) if sems else np.zeros((0, len(SEMANTIC_NAMES), 2))
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = path + ".tmp.npz"
        np.savez(tmp, emb=emb, sem=sem, how=np.array(how))
        os.replace(tmp, path)
    except OSError as exc:  # an unwritable cache costs time on the next start, not this answer
        log.warning("cannot write the embedding cache %s (%s); continuing without it", path, exc)
    return emb, sem, how, key


def entry_geometry(lib: Library, sem: np.ndarray) -> np.ndarray:
    """(N, F) raw geometric features: stored ``geometry``, else from the entry's landmarks (stored or found);
    NaN rows where neither exists."""
    geo = np.full((len(lib.entries), len(FEATURE_NAMES)), np.nan)
    for i, e in enumerate(lib.entries):
        if e.get("geometry") is not None and len(e["geometry"]) == len(FEATURE_NAMES):
            geo[i] = e["geometry"]
        elif i < len(sem) and not np.isnan(sem[i]).any():
            try:
                geo[i] = geometric_features(sem[i])
            except ValueError:  # degenerate landmarks (the eyes coincide)
                pass
    return geo


def build_index(engine, lib: Library, cache_dir: str | None = None) -> LibraryIndex:
    """The library's feature distributions, z-scored geometry, declared expressions and neutral-relative
    geometry."""
    emb, sem, how, key = library_embeddings(engine, lib, cache_dir)
    dist = to_distribution(emb).astype(np.float32)
    raw = entry_geometry(lib, sem)
    missing = [e["id"] for e, h in zip(lib.entries, how) if h == "none" and e.get("geometry") is None]
    if missing:
        log.info("library %s: %d entries without landmarks (no geometric term): %s", lib.root, len(missing),
                 ", ".join(missing[:5]))  # fmt: skip
    return LibraryIndex(
        library=lib,
        dist=dist,
        sqrt_dist=np.sqrt(dist),
        geometry=library_geometry(raw),
        key=key,
        classes=library_classes(lib.entries),
        relative=library_relative(raw, lib.entries),
        landmarks_from=tuple(how),
    )


def rank(
    index: LibraryIndex,
    query: Features,
    top_k: int = 5,
    weights: RetrievalWeights | None = None,
    shortlist: int | None = None,
) -> list[dict]:
    """Top-k entries by the score (``backend.scoring``): the landmark-free parts (JS and the declared label)
    make a shortlist, the full score re-sorts it."""
    weights = weights or RetrievalWeights()
    n = len(index.dist)
    top_k = max(1, min(top_k, n))
    qdist = query.dist[0]
    cand = np.arange(n)
    if n > EXACT_LIMIT:
        bc = index.sqrt_dist @ np.sqrt(qdist).astype(np.float32)  # Bhattacharyya coefficient
        m = min(n, max(1000, 20 * top_k))
        cand = np.argpartition(-bc, m - 1)[:m]
    first = distances(query, index.features(cand))
    pre = combine(first, weights, only=SHORTLIST_PARTS)[0]
    if not np.isfinite(pre).all() or not pre.any():
        pre = first["js"][0]
    m = min(len(cand), shortlist or max(4 * top_k, 20))
    short = np.argpartition(pre, m - 1)[:m] if m < len(cand) else np.arange(len(cand))
    idx = cand[short]
    d = {k: v[:, short] for k, v in first.items()}
    phi = combine(d, weights)[0]
    order = np.lexsort((d["js"][0], phi))[:top_k]
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
                "js": round(float(d["js"][0, o]), 6),
                "geo": round(float(d["geo"][0, o]), 6),
                "label_distance": round(float(d["label"][0, o]), 6),
                "geo_rel": round(float(d["geo_rel"][0, o]), 6),
                "score": round(float(phi[o]), 6),
            }
        )
    return out


@dataclass(frozen=True)
class Neutral:
    """The actor's neutral face ("Capture my neutral"): its raw geometric features and class probabilities
    (LABELS order), either of which may be missing."""

    geometry: np.ndarray | None
    probabilities: np.ndarray | None


def neutral_reference(neutral: dict | None) -> Neutral | None:
    """A retrieve request's ``neutral`` param (``{"points": 68 or 23 [x, y] points, "probabilities": {label:
    p}}``, either optional) as a ``Neutral``; INVALID_PARAMS naming what is wrong."""
    if neutral is None:
        return None

    def bad(why: str) -> DeepExprError:
        return DeepExprError(protocol.INVALID_PARAMS, f"param 'neutral': {why}")

    if not isinstance(neutral, dict):
        raise bad('must be an object {"points": [[x, y], ...], "probabilities": {label: p}}')
    geo = probs = None
    pts = neutral.get("points")
    if pts is not None:
        try:
            arr = np.asarray(pts, dtype=np.float64)
        except (TypeError, ValueError):
            raise bad("'points' must be a list of [x, y] numbers") from None
        if arr.shape not in ((68, 2), (len(SEMANTIC_NAMES), 2)) or not np.isfinite(arr).all():
            raise bad(f"'points' must be 68 (dlib) or {len(SEMANTIC_NAMES)} (named) [x, y] points")
        sem = semantic_from_68(arr) if len(arr) == 68 else arr
        try:
            geo = geometric_features(sem).astype(np.float64)
        except ValueError as exc:
            raise bad(str(exc)) from None
    p = neutral.get("probabilities")
    if p is not None:
        if not isinstance(p, dict) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 for v in p.values()
        ):
            raise bad("'probabilities' must be {label: non-negative number}")
        if sum(p.values()) <= 0:
            raise bad("'probabilities' must not all be 0")
        probs = probabilities_vector(p)
    return Neutral(geo, probs)


def query_features(
    engine, fa, neutral: Neutral | None = None, weights: RetrievalWeights | None = None
) -> tuple[Features, dict]:
    """(features, classification) of a human face analysis; with the actor's ``neutral``, the neutral-relative
    geometry and the calibrated class probabilities."""
    weights = weights or RetrievalWeights()
    model = engine.retrieval_model
    size = int(model.card.input.get("size", 48))
    emb = engine.embed_crops([fa.aligned(size).crop], model)[0]
    geo = engine.geometry(fa).astype(np.float64)
    cls = engine.classify_analysis(fa)
    probs = probabilities_vector(cls["probabilities"])[None]
    relative = None
    if neutral is not None:
        probs = calibrate(probs, neutral.probabilities, weights.calibration)
        relative = query_relative(geo, neutral.geometry) if neutral.geometry is not None else None
    return Features(to_distribution(emb)[None], query_geometry(geo)[None], probs, relative), cls


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
        neutral: dict | Neutral | None = None,
    ) -> dict:
        weights = weights or RetrievalWeights()
        ref = neutral if isinstance(neutral, Neutral) or neutral is None else neutral_reference(neutral)
        lib = library if isinstance(library, Library) else load_library(library)
        index = self.index(lib)
        fa = self.engine.analyze(image, box)
        query, cls = query_features(self.engine, fa, ref, weights)
        return {
            **fa.describe(),
            "label": cls["label"],
            "probabilities": cls["probabilities"],
            "library": lib.root,
            "library_size": len(lib.entries),
            "model": self.engine.retrieval_model.name,
            "alpha": weights.alpha,
            "beta": weights.beta,
            "gamma": weights.gamma,
            "delta": weights.delta,
            "calibrated": ref is not None,
            "candidates": rank(index, query, top_k=top_k, weights=weights),
        }
