"""Library indexes on disk: what retrieval needs of a library, as binary arrays that are memory-mapped, never
parsed again.

One folder per (library content, retrieval model, ``INDEX_VERSION``) under ``<cache>/index/``::

    meta.json        version, entry count, the thumbnails' check (below), array shapes and dtypes
    dist.npy         (N, D) float32 feature distributions (rows sum to one)
    geometry.npy     (N, F) float32 geometric features z-scored in the library's domain, NaN rows where unknown
    classes.npy      (N, 7) float32 declared expressions (when the library has labels)
    relative.npy     (N, F) float32 geometry relative to the character's neutral (when it has neutrals)
    sem.npy          (N, 23, 2) float32 named landmarks in thumbnail pixels, NaN where none
    how.npy          (N,) uint8 where each entry's landmarks came from (``HOW``)
    entries.jsonl    one compact JSON line per entry (id, label, thumbnail, pose, intensity, character)
    offsets.npy      (N + 1,) int64 byte offsets of those lines
    ann.faiss        the vector index (``backend/ann.py``), for libraries above its size limit

Content-addressed: the folder's name is the SHA-256 of ``library.json`` with the model's checksum, so a copy of a
library finds its index and any edit of ``library.json`` gets a new one. Thumbnails are checked too (``meta``'s
``thumbs``): for libraries up to ``STAT_LIMIT`` entries the SHA-256 over every thumbnail's bytes, above it the
modification times of the folders that hold them (a thumbnail replaced by writing a new file and renaming it,
as every tool here does, changes its folder's time; one edited in place in a library that large is noticed
only when ``library.json`` changes).

Written into a temporary folder and renamed into place, so a reader never sees half an index; checked on
load (version, count, every file's shape and dtype; for libraries up to ``FULL_CHECK_LIMIT`` entries every value
finite), and a damaged folder is removed and rebuilt, never used.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

HOW = ("stored", "detected", "face_box", "head", "none")  # where an entry's landmarks came from
STAT_LIMIT = 20_000  # up to this many entries, thumbnails are checked by content and by stat
FULL_CHECK_LIMIT = 200_000  # up to this many entries, loading checks every stored value is finite
ARRAYS = {"dist": np.float32, "sem": np.float32, "how": np.uint8, "geometry": np.float32}  # name -> dtype
OPTIONAL = {"classes": np.float32, "relative": np.float32}  # present when the library has labels / neutrals
ENTRY_FIELDS = ("id", "label", "thumbnail", "pose", "intensity", "character")


def file_sha256(path: str, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def thumbnail_dirs(thumbnails: Sequence[str]) -> list[str]:
    """The folders (relative to the library) that hold the thumbnails, sorted."""
    return sorted({os.path.dirname(t) for t in thumbnails})


def thumbs_check(root: str, thumbnails: Sequence[str]) -> dict:
    """What ``meta.json`` stores to tell whether the thumbnails changed since the index was built."""
    if len(thumbnails) <= STAT_LIMIT:
        h = hashlib.sha256()
        for t in thumbnails:
            h.update(bytes.fromhex(file_sha256(os.path.join(root, t))))
        return {"kind": "content", "sha256": h.hexdigest()}
    dirs = thumbnail_dirs(thumbnails)
    return {"kind": "folders", "folders": {d: os.stat(os.path.join(root, d)).st_mtime_ns for d in dirs}}


def thumbs_unchanged(root: str, check: dict, thumbnails: Sequence[str]) -> bool:
    try:
        if check.get("kind") == "content":
            return thumbs_check(root, thumbnails) == check
        if check.get("kind") == "folders":
            return all(os.stat(os.path.join(root, d)).st_mtime_ns == t for d, t in check["folders"].items())
    except OSError:  # a thumbnail or folder is gone
        return False
    return False


class EntryTable(Sequence):
    """A library's entries read on demand from ``entries.jsonl`` by byte offset: a million-entry library costs
    its offsets in memory (8 bytes an entry), not a million parsed dicts."""

    def __init__(self, path: str, offsets: np.ndarray):
        self.path, self.offsets = path, offsets
        self._f = None

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(i)
        if self._f is None:
            self._f = open(self.path, "rb")  # noqa: SIM115 - kept open for the index's lifetime
        self._f.seek(int(self.offsets[i]))
        return json.loads(self._f.read(int(self.offsets[i + 1] - self.offsets[i])))

    def __iter__(self) -> Iterator[dict]:
        with open(self.path, "rb") as f:
            for line in f:
                yield json.loads(line)


@dataclass
class Stored:
    folder: str
    meta: dict
    arrays: dict[str, np.ndarray]
    entries: EntryTable

    @property
    def how(self) -> tuple[str, ...]:
        return tuple(HOW[int(h)] for h in self.arrays["how"])


class Writer:
    """Writes one index folder: arrays as memory-mapped ``.npy`` files filled in batches, entries streamed, then
    ``commit`` renames the folder into place (or ``abort`` removes it)."""

    def __init__(self, folder: str, n: int, dim: int, n_features: int, n_points: int):
        self.folder = folder
        self.tmp = f"{folder}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        os.makedirs(self.tmp)
        shapes = {"dist": (n, dim), "sem": (n, n_points, 2), "how": (n,)}
        self.arrays = {
            k: np.lib.format.open_memmap(os.path.join(self.tmp, f"{k}.npy"), "w+", ARRAYS[k], shapes[k]) for k in shapes
        }
        self._entries = open(os.path.join(self.tmp, "entries.jsonl"), "wb")  # noqa: SIM115 - closed in commit/abort
        self._offsets = [0]

    def add_entries(self, entries: Sequence[dict]) -> None:
        for e in entries:
            line = json.dumps({k: e.get(k) for k in ENTRY_FIELDS}, separators=(",", ":"), allow_nan=False).encode()
            self._entries.write(line + b"\n")
            self._offsets.append(self._offsets[-1] + len(line) + 1)

    def commit(self, meta: dict, arrays: dict[str, np.ndarray], extra_files: dict[str, str] | None = None) -> str:
        """Flush, save the whole-library ``arrays`` (geometry, classes, relative), write ``meta.json`` last and
        rename into place; returns the folder."""
        self._entries.close()
        np.save(os.path.join(self.tmp, "offsets.npy"), np.asarray(self._offsets, dtype=np.int64))
        for a in self.arrays.values():
            a.flush()
        self.arrays.clear()
        for name, a in arrays.items():
            np.save(os.path.join(self.tmp, f"{name}.npy"), a)
        for name, src in (extra_files or {}).items():
            os.replace(src, os.path.join(self.tmp, name))
        names = [k for k in (*ARRAYS, *OPTIONAL) if os.path.isfile(os.path.join(self.tmp, f"{k}.npy"))]
        shapes = {k: list(np.load(os.path.join(self.tmp, f"{k}.npy"), mmap_mode="r").shape) for k in names}
        with open(os.path.join(self.tmp, "meta.json"), "w", encoding="utf-8") as f:
            json.dump({**meta, "shapes": shapes}, f)
        try:
            os.replace(self.tmp, self.folder)
        except OSError:  # another process put the same index in place first
            shutil.rmtree(self.tmp, ignore_errors=True)
        return self.folder

    def abort(self) -> None:
        self._entries.close()
        self.arrays.clear()
        shutil.rmtree(self.tmp, ignore_errors=True)


def read(folder: str, version: str) -> Stored | None:
    """The index in ``folder``, memory-mapped, or None when there is none or it is damaged (then the folder is
    removed, so the caller rebuilds it)."""
    meta_path = os.path.join(folder, "meta.json")
    if not os.path.isfile(meta_path):
        return None
    try:
        with open(meta_path, encoding="utf-8") as f:
            meta = json.load(f)
        if meta.get("version") != version:
            raise ValueError(f"version {meta.get('version')!r}, not {version!r}")
        n = int(meta["n"])
        arrays = {}
        wanted = {**ARRAYS, **{k: v for k, v in OPTIONAL.items() if k in meta["shapes"]}}
        for k, dtype in wanted.items():
            a = np.load(os.path.join(folder, f"{k}.npy"), mmap_mode="r")
            if a.dtype != dtype or list(a.shape) != meta["shapes"][k] or a.shape[0] != n:
                raise ValueError(f"{k}.npy is {a.dtype} {a.shape}, expected {np.dtype(dtype)} {meta['shapes'][k]}")
            arrays[k] = a
        offsets = np.load(os.path.join(folder, "offsets.npy"))
        size = os.path.getsize(os.path.join(folder, "entries.jsonl"))
        if offsets.shape != (n + 1,) or offsets[0] != 0 or offsets[-1] != size or (np.diff(offsets) <= 0).any():
            raise ValueError("entries.jsonl and offsets.npy disagree")
        if n <= FULL_CHECK_LIMIT:
            dist = arrays["dist"]
            if not np.isfinite(dist).all() or (dist < 0).any():
                raise ValueError("dist.npy holds non-finite or negative values")
            if (arrays["how"] >= len(HOW)).any():
                raise ValueError("how.npy holds unknown codes")
    except (OSError, ValueError, KeyError, TypeError, json.JSONDecodeError) as exc:
        log.warning("library index %s is damaged (%s); rebuilding it", folder, exc)
        remove(folder)
        return None
    return Stored(folder, meta, arrays, EntryTable(os.path.join(folder, "entries.jsonl"), offsets))


def remove(folder: str) -> None:
    """Take a damaged index out of the way: renamed first (atomic), then deleted."""
    trash = f"{folder}.damaged-{uuid.uuid4().hex[:8]}"
    try:
        os.replace(folder, trash)
    except OSError:
        return
    shutil.rmtree(trash, ignore_errors=True)
