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

import functools
import logging
import os
import tempfile
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from deepexpr_blender.core import protocol
from deepexpr_blender.core.vocabulary import LABELS

from . import ann, index_store
from .align import align_face
from .errors import DeepExprError
from .geometry import FEATURE_NAMES, geometric_features
from .landmarks import SEMANTIC_NAMES, semantic_from_68
from .library import CACHE_DIR, Library, check_folder, load_library
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

EXACT_LIMIT = 5000  # above this many entries, shortlist by Bhattacharyya (or the vector index) before exact JS
INDEX_VERSION = "5"  # bump when what is stored per library changes (v5: binary arrays, backend/index_store.py)
SHORTLIST_PARTS = ("js", "label")  # the parts that rank the shortlist the geometry re-sorts
SHORTLIST = 1000  # entries above EXACT_LIMIT scored exactly after the inner-product shortlist (20 * top_k if more)
BUILD_BATCH = 256  # library entries embedded per forward pass while building an index
MAX_CACHE_BYTES = 3 << 30  # indexes kept in memory, least recently used dropped first (memory-mapped bytes count)


@dataclass
class LibraryIndex:
    library: Library  # its entries may be read on demand (``index_store.EntryTable``)
    dist: np.ndarray  # (N, D) float32 feature distributions (memory-mapped when loaded from disk)
    sqrt_dist: np.ndarray | None  # (N, D) float32 for the exact Bhattacharyya shortlist; None with a vector index
    geometry: np.ndarray  # (N, F) z-scored in the library's domain; NaN rows where unknown
    key: str
    classes: np.ndarray | None = None  # (N, 7) declared expressions; NaN rows where unlabelled; None: no labels
    relative: np.ndarray | None = None  # (N, F) geometry relative to the character's neutral entry
    how: np.ndarray | None = None  # (N,) uint8 where each entry's landmarks came from (index_store.HOW)
    sem: np.ndarray | None = None  # (N, 23, 2) named landmarks in thumbnail pixels, NaN where none
    ann: object | None = None  # the vector index (backend/ann.py) for large libraries
    stamp: tuple = ()  # the cheap fingerprint of the files it was built from (``Retriever``)
    thumbs: tuple[str, ...] | None = None  # thumbnail paths (relative), kept for small libraries' fingerprint
    damaged: bool = False  # rows of its files were found damaged: reload (and so rebuild) it
    library_dirs: tuple[str, ...] = ()  # folders holding the thumbnails (large libraries' fingerprint)
    folder: str = ""  # where it is stored

    @property
    def landmarks_from(self) -> tuple[str, ...]:
        """Per entry: stored | detected | face_box | head | none."""
        return () if self.how is None else tuple(index_store.HOW[int(h)] for h in self.how)

    @functools.cached_property
    def label_rows(self) -> np.ndarray:
        """``label_vectors`` of the declared expressions, made once (the exact shortlist's label part)."""
        return label_vectors(self.classes)

    @property
    def nbytes(self) -> int:
        arrays = (self.dist, self.sqrt_dist, self.geometry, self.classes, self.relative, self.how, self.sem)
        return sum(a.nbytes for a in arrays if a is not None) + (ann.nbytes(self.ann) if self.ann is not None else 0)

    def features(self, idx: np.ndarray | None = None) -> Features:
        sel = slice(None) if idx is None else idx
        return Features(
            np.asarray(self.dist[sel]),
            np.asarray(self.geometry[sel]),
            None if self.classes is None else np.asarray(self.classes[sel]),
            None if self.relative is None else np.asarray(self.relative[sel]),
        )


class IndexCache:
    """Library indexes in memory, one per library folder, least recently used dropped first once their bytes
    pass ``max_bytes`` (the newest is always kept). A library that changed replaces its old index."""

    def __init__(self, max_bytes: int = MAX_CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self._indexes: OrderedDict[str, LibraryIndex] = OrderedDict()

    def get(self, root: str) -> LibraryIndex | None:
        index = self._indexes.get(root)
        if index is not None:
            self._indexes.move_to_end(root)
        return index

    def put(self, root: str, index: LibraryIndex) -> None:
        self._indexes.pop(root, None)
        self._indexes[root] = index
        while len(self._indexes) > 1 and self.nbytes > self.max_bytes:
            self._indexes.popitem(last=False)

    @functools.cached_property
    def label_rows(self) -> np.ndarray:
        """``label_vectors`` of the declared expressions, made once (the exact shortlist's label part)."""
        return label_vectors(self.classes)

    @property
    def nbytes(self) -> int:
        return sum(i.nbytes for i in self._indexes.values())

    def clear(self) -> None:
        self._indexes.clear()

    def __len__(self) -> int:
        return len(self._indexes)


def _entry_analysis(
    engine, lib: Library, i: int, size: int, decoded: dict | None = None
) -> tuple[np.ndarray, np.ndarray | None, str]:
    """(aligned crop, named landmarks in thumbnail pixels or None, where they came from) of a library thumbnail:
    stored landmarks, else dlib, else the character-face fallback, else a centre crop (thumbnails are framed
    on the face). ``decoded`` keeps the last decoded thumbnail (entries that share one decode it once)."""
    import cv2

    from .character_face import character_points68
    from .imageio import decode_image

    path = lib.thumbnail(i)
    if decoded is not None and decoded.get("path") == path:
        dec = decoded["image"]
    else:
        dec = decode_image(path)
        if decoded is not None:
            decoded.update(path=path, image=dec)
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


def library_sha256(root: str) -> str:
    return index_store.file_sha256(os.path.join(root, "library.json"))


def index_folder(root: str, model_sha: str, cache_dir: str | None = None) -> str:
    """The index folder of the library at ``root`` for a model: content-addressed (``backend/index_store.py``)."""
    key = f"{library_sha256(root)[:20]}-{model_sha[:20]}-v{INDEX_VERSION}"
    return os.path.join(cache_dir or CACHE_DIR, "index", key)


def label_vectors(classes: np.ndarray) -> np.ndarray:
    """Square roots of the entries' declared expressions; an unlabelled entry gets the uniform distribution
    (neither favoured nor buried, as the median fill does in the exact score)."""
    c = np.asarray(classes, dtype=np.float32)
    c = np.where(np.isnan(c).any(axis=1, keepdims=True), np.float32(1 / c.shape[1]), c)
    return np.sqrt(c)


def shortlist_vectors(dist: np.ndarray, classes: np.ndarray | None) -> np.ndarray:
    """Library rows for the inner-product shortlist: [sqrt(features), sqrt(declared expression)]."""
    v = np.sqrt(np.asarray(dist, dtype=np.float32))
    return v if classes is None else np.concatenate([v, label_vectors(classes)], axis=1)


def shortlist_query(query: Features, weights: RetrievalWeights, with_classes: bool) -> np.ndarray:
    """The query's row: its inner product with ``shortlist_vectors`` is BC(features) + (gamma / alpha) *
    BC(classes), which grows as alpha * JS + gamma * JS_label shrinks (JS ~ the Hellinger distance,
    sqrt(1 - BC))."""
    v = np.sqrt(np.asarray(query.dist[0], dtype=np.float32))
    if not with_classes:
        return v
    probs = query.classes[0] if query.classes is not None else np.full(len(LABELS), 1 / len(LABELS))
    g = weights.gamma / weights.alpha if weights.alpha > 0 else (1e3 if weights.gamma > 0 else 0.0)
    return np.concatenate([v, np.float32(min(g, 1e3)) * np.sqrt(np.asarray(probs, dtype=np.float32))])


def build_index(
    engine,
    lib: Library,
    cache_dir: str | None = None,
    progress: Callable[[int, int, str], None] | None = None,
    cancel: Callable[[], None] | None = None,
) -> LibraryIndex:
    """The library's index from its disk copy, or built in batches of ``BUILD_BATCH`` entries and stored
    (``progress(done, total, stage)`` after each batch; ``cancel()`` raises to stop, leaving nothing behind).
    Holds feature distributions, z-scored geometry, declared expressions and neutral-relative geometry."""
    folder = index_folder(lib.root, engine.retrieval_model.sha256, cache_dir)
    index = load_index(folder, lib.root)
    if index is not None:
        return index
    try:
        os.makedirs(os.path.dirname(folder), exist_ok=True)
        _write_index(engine, lib, folder, progress, cancel)
    except OSError as exc:  # an unwritable cache costs a rebuild on the next start, not this answer
        log.warning("cannot write the library index %s (%s); building it in a temporary folder", folder, exc)
        with tempfile.TemporaryDirectory(prefix="deepexpr-index-") as tmp:
            folder = _write_index(engine, lib, os.path.join(tmp, "index"), progress, cancel)
            index = load_index(folder, lib.root, check_thumbs=False)
            return _in_memory(index)
    index = load_index(folder, lib.root, check_thumbs=False)
    if index is None:
        raise DeepExprError(protocol.INTERNAL_ERROR, f"the library index {folder} could not be read back")
    return index


def _in_memory(index: LibraryIndex) -> LibraryIndex:
    """A copy that holds its arrays and entries in memory (its folder is about to go)."""
    lib = Library(index.library.root, {"entries": list(index.library.entries)})
    copy = {k: None if v is None else np.array(v) for k, v in
            dict(dist=index.dist, geometry=index.geometry, classes=index.classes, relative=index.relative,
                 how=index.how, sem=index.sem).items()}  # fmt: skip
    sqrt = None if index.sqrt_dist is None else np.sqrt(copy["dist"])
    return LibraryIndex(lib, copy["dist"], sqrt, copy["geometry"], index.key, copy["classes"], copy["relative"],
                        copy["how"], copy["sem"], index.ann, thumbs=index.thumbs)  # fmt: skip


def _write_index(engine, lib: Library, folder: str, progress, cancel) -> str:
    model = engine.retrieval_model
    size = int(model.card.input.get("size", 48))
    n = len(lib.entries)
    w = None  # the writer, made once the first batch tells the embedding's width
    try:
        decoded: dict = {}
        for start in range(0, n, BUILD_BATCH):
            if cancel:
                cancel()
            end = min(n, start + BUILD_BATCH)
            crops, sems, hows = [], [], []
            for i in range(start, end):
                crop, sem, how = _entry_analysis(engine, lib, i, size, decoded)
                crops.append(crop)
                sems.append(np.nan if sem is None else sem)
                hows.append(index_store.HOW.index(how))
            dist = to_distribution(engine.embed_crops(crops, model))
            if w is None:
                w = index_store.Writer(folder, n, dist.shape[1], len(FEATURE_NAMES), len(SEMANTIC_NAMES))
            w.arrays["dist"][start:end] = dist
            for j, sem in enumerate(sems):
                w.arrays["sem"][start + j] = sem
            w.arrays["how"][start:end] = hows
            w.add_entries(lib.entries[start:end])
            if progress:
                progress(end, n, "embedding")
        if cancel:
            cancel()
        sem = w.arrays["sem"]
        raw = entry_geometry(lib, sem)
        missing = int(((w.arrays["how"] == index_store.HOW.index("none")) & np.isnan(raw).any(axis=1)).sum())
        if missing:
            log.info("library %s: %d entries without landmarks (no geometric term)", lib.root, missing)
        arrays = {"geometry": library_geometry(raw).astype(np.float32)}
        classes = library_classes(lib.entries)
        relative = library_relative(raw, lib.entries)
        if classes is not None:
            arrays["classes"] = classes.astype(np.float32)
        if relative is not None:
            arrays["relative"] = relative.astype(np.float32)
        extra = {}
        if n >= ann.ANN_LIMIT and ann.available():
            path = os.path.join(w.tmp, "ann.faiss.tmp")
            _build_vector_index(w.arrays["dist"], arrays.get("classes"), path, progress, cancel)
            extra["ann.faiss"] = path
        thumbs = [e["thumbnail"] for e in lib.entries]
        meta = {
            "version": INDEX_VERSION,
            "n": n,
            "model": model.sha256,
            "thumbs": index_store.thumbs_check(lib.root, thumbs),
            "thumb_dirs": index_store.thumbnail_dirs(thumbs),
        }
        return w.commit(meta, arrays, extra)
    except BaseException:
        if w is not None:
            w.abort()
        raise


def _build_vector_index(dist: np.ndarray, classes: np.ndarray | None, path: str, progress=None, cancel=None) -> None:
    """The faiss index over ``shortlist_vectors`` of the library's rows, written to ``path``."""

    def rows(a: int, b: int) -> np.ndarray:
        return shortlist_vectors(dist[a:b], None if classes is None else classes[a:b])

    ann.build(rows, len(dist), path, lambda d, t: progress and progress(d, t, "vector index"), cancel)


def _vector_index(folder: str, arrays: dict):
    """The stored vector index of a large library; rebuilt from the stored arrays (no re-embedding) when it is
    missing, unreadable or of another width."""
    path = os.path.join(folder, "ann.faiss")
    width = arrays["dist"].shape[1] + (len(LABELS) if arrays.get("classes") is not None else 0)
    if os.path.isfile(path):
        try:
            vectors = ann.load(path)
            if vectors.d == width and vectors.ntotal == len(arrays["dist"]):
                return vectors
        except RuntimeError as exc:  # faiss reports a damaged file this way
            log.warning("library index %s: vector index unreadable (%s)", folder, exc)
    log.info("library index %s: building its vector index from the stored arrays", folder)
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        _build_vector_index(arrays["dist"], arrays.get("classes"), tmp)
        os.replace(tmp, path)
    except OSError as exc:  # read-only cache: keep it in memory only
        log.warning("cannot store the vector index %s (%s)", path, exc)
        return ann.load(tmp) if os.path.isfile(tmp) else None
    return ann.load(path)


def load_index(folder: str, root: str, check_thumbs: bool = True) -> LibraryIndex | None:
    """The index stored in ``folder`` for the library at ``root``, memory-mapped; None when absent, damaged
    (then removed) or built from other thumbnails."""
    stored = index_store.read(folder, INDEX_VERSION)
    if stored is None:
        return None
    small = stored.meta["n"] <= index_store.STAT_LIMIT
    entries = list(stored.entries) if small else stored.entries  # small libraries: read once, kept in memory
    thumbs = tuple(e["thumbnail"] for e in entries) if small else None
    if check_thumbs and not index_store.thumbs_unchanged(root, stored.meta["thumbs"], thumbs or ()):
        log.info("library %s: thumbnails changed since its index %s was built; rebuilding", root, folder)
        index_store.remove(folder)
        return None
    a = stored.arrays
    vectors = _vector_index(folder, a) if stored.meta["n"] >= ann.ANN_LIMIT and ann.available() else None
    # Small libraries are read into memory (a few MB); large ones stay memory-mapped.
    dist = np.array(a["dist"]) if small else a["dist"]
    return LibraryIndex(
        library=Library(root, {"entries": entries}),
        dist=dist,
        sqrt_dist=None if vectors is not None else np.sqrt(dist),
        geometry=a["geometry"],
        key=os.path.basename(folder),
        classes=a.get("classes"),
        relative=a.get("relative"),
        how=a["how"],
        sem=a["sem"],
        ann=vectors,
        thumbs=thumbs,
        library_dirs=tuple(stored.meta.get("thumb_dirs", ())),
        folder=folder,
    )


def rank(
    index: LibraryIndex,
    query: Features,
    top_k: int = 5,
    weights: RetrievalWeights | None = None,
    shortlist: int | None = None,
    candidates: np.ndarray | None = None,
) -> list[dict]:
    """Top-k entries by the score (``backend.scoring``): the landmark-free parts (JS and the declared label)
    make a shortlist, the full score re-sorts it. Above ``EXACT_LIMIT`` entries, those parts are first
    approximated by an inner product (``shortlist_query``: Bhattacharyya coefficients of the features and of
    the classes), exactly or through the vector index, keeping ``SHORTLIST`` entries; ``candidates`` (entry
    numbers) replaces that step."""
    weights = weights or RetrievalWeights()
    n = len(index.dist)
    top_k = max(1, min(top_k, n))
    cand = np.arange(n) if candidates is None else np.asarray(candidates)  # given candidates: no shortlist
    m = max(SHORTLIST, 20 * top_k)
    if candidates is None and index.ann is not None:  # large: the vector index (file order)
        q = shortlist_query(query, weights, index.classes is not None)
        cand = np.sort(ann.search(index.ann, q, m))
        finite = np.isfinite(np.asarray(index.dist[cand])).all(axis=1)
        if not finite.all():  # a damaged memory-mapped file: answer from the rest, rebuild on the next load
            log.warning("library index %s: %d damaged rows; it will be rebuilt", index.key, int((~finite).sum()))
            index.damaged = True
            cand = cand[finite]
    elif candidates is None and n > EXACT_LIMIT:  # the same shortlist, exact
        q = shortlist_query(query, weights, index.classes is not None)
        d = index.sqrt_dist.shape[1]
        bc = index.sqrt_dist @ q[:d]
        if len(q) > d:
            bc += index.label_rows @ q[d:]
        m = min(n, m)
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


def stamp(root: str, thumbs: tuple[str, ...] | None, thumb_dirs: tuple[str, ...] = ()) -> tuple:
    """The cheap fingerprint that keeps an index in memory: library.json's identity, size and time, and the
    thumbnails' sizes and times (small libraries) or their folders' times (large ones)."""
    st = os.stat(os.path.join(root, "library.json"))
    parts: list = [st.st_ino, st.st_size, st.st_mtime_ns]
    try:
        for t in thumbs if thumbs is not None else thumb_dirs:
            s = os.stat(os.path.join(root, t))
            parts.append((s.st_size, s.st_mtime_ns))
    except OSError:
        parts.append("missing")
    return tuple(parts)


class Retriever:
    """Retrieval for one engine; owns the engine's library index cache."""

    def __init__(self, engine, cache_dir: str | None = None, max_bytes: int = MAX_CACHE_BYTES):
        self.engine = engine
        self.cache_dir = cache_dir
        self.cache = IndexCache(max_bytes)

    def index(
        self,
        library: str | Library | LibraryIndex,
        progress: Callable[[int, int, str], None] | None = None,
        cancel: Callable[[], None] | None = None,
    ) -> LibraryIndex:
        """The library's index: from memory while its files are unchanged (``stamp``), else from its disk copy
        (content-addressed: ``index_folder``), else built (``build_index``). A library given as a path is
        parsed only when its index must be built."""
        if isinstance(library, LibraryIndex):
            return library
        root = library.root if isinstance(library, Library) else check_folder(library)
        model_sha = self.engine.retrieval_model.sha256
        index = self.cache.get(root)
        if index is not None and not index.damaged and index.key.split("-")[1] == model_sha[:20]:
            try:
                if stamp(root, index.thumbs, index.library_dirs) == index.stamp:
                    return index
            except OSError:
                pass
        if index is not None and index.damaged:
            index_store.remove(index.folder)
        before = os.stat(os.path.join(root, "library.json"))  # taken before reading it
        index = load_index(index_folder(root, model_sha, self.cache_dir), root)
        if index is None:
            lib = library if isinstance(library, Library) else load_library(root)
            index = build_index(self.engine, lib, self.cache_dir, progress, cancel)
        index.stamp = stamp(root, index.thumbs, index.library_dirs)
        if index.stamp[:3] != (before.st_ino, before.st_size, before.st_mtime_ns):
            index.stamp = ()  # library.json changed while it was read: check again next time
        self.cache.put(root, index)
        return index

    def retrieve(
        self,
        image,
        library: str | Library | LibraryIndex,
        top_k: int = 5,
        weights: RetrievalWeights | None = None,
        box=None,
        neutral: dict | Neutral | None = None,
        progress: Callable[[int, int, str], None] | None = None,
        cancel: Callable[[], None] | None = None,
    ) -> dict:
        weights = weights or RetrievalWeights()
        ref = neutral if isinstance(neutral, Neutral) or neutral is None else neutral_reference(neutral)
        index = self.index(library, progress, cancel)
        lib = index.library
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
