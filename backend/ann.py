"""The vector index that shortlists a large library before exact scoring (``backend/retrieval.py``).

Libraries of at least ``ANN_LIMIT`` entries get a faiss IVF index with 8-bit scalar-quantized vectors over the
square roots of their feature distributions and declared expressions (``retrieval.shortlist_vectors``),
searched by inner product: Bhattacharyya coefficients, whose nearest entries are those with the smallest
Hellinger distance, the JS distance's close cousin. The shortlist it returns (``retrieval.SHORTLIST`` entries)
is then scored exactly, every part of the score included, from the memory-mapped arrays. Below ``ANN_LIMIT``
an exact matrix product over the whole library is fast enough (``docs/benchmarks.md``).

faiss (``faiss-cpu``) is a dependency; should it fail to import, retrieval falls back to the exact product,
slower but with the same answers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np

log = logging.getLogger(__name__)

ANN_LIMIT = 50_000  # entries; below this, exact search over the whole library
TRAIN_SAMPLE = 50_000  # vectors the coarse quantizer is trained on, at least (``train_size``)
NPROBE = 32  # inverted lists searched per query
ADD_BATCH = 65_536


def available() -> bool:
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


def n_lists(n: int) -> int:
    """Inverted lists: about 4 * sqrt(N) (so ``NPROBE`` lists hold 1-3 % of the library), at most N / 39
    (faiss's k-means wants 39 training vectors a list)."""
    return int(np.clip(4 * np.sqrt(n), 16, max(16, n // 39)))


def train_size(n: int) -> int:
    return min(n, max(TRAIN_SAMPLE, 39 * n_lists(n)))


def build(
    rows: Callable[[int, int], np.ndarray],
    n: int,
    path: str,
    progress: Callable[[int, int], None] | None = None,
    cancel: Callable[[], None] | None = None,
) -> None:
    """Train and fill the index on ``rows(start, end)`` (float32 vectors of entries start..end-1) in batches
    (``progress(done, total)`` after each, ``cancel()`` raising to stop) and write it to ``path``."""
    import faiss

    m = train_size(n)
    picks = np.linspace(0, n - 1, m).astype(np.int64)  # spread over the library, read in blocks
    sample = np.concatenate([rows(a, a + ADD_BATCH)[picks[(picks >= a) & (picks < a + ADD_BATCH)] - a]
                             for a in range(0, n, ADD_BATCH)])  # fmt: skip
    d = sample.shape[1]
    quantizer = faiss.IndexFlatIP(d)
    index = faiss.IndexIVFScalarQuantizer(
        quantizer, d, n_lists(n), faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
    )
    index.train(np.ascontiguousarray(sample, dtype=np.float32))
    for start in range(0, n, ADD_BATCH):
        if cancel:
            cancel()
        index.add(np.ascontiguousarray(rows(start, min(n, start + ADD_BATCH)), dtype=np.float32))
        if progress:
            progress(min(n, start + ADD_BATCH), n)
    faiss.write_index(index, path)


def load(path: str):
    import faiss

    index = faiss.read_index(path)
    index.nprobe = NPROBE
    faiss.omp_set_num_threads(1)  # a search takes well under a millisecond; threads only contend with torch
    return index


def search(index, q: np.ndarray, k: int) -> np.ndarray:
    """Ids of the (up to) ``k`` entries with the largest inner product with the query row ``q``."""
    q = np.ascontiguousarray(q, dtype=np.float32).reshape(1, -1)
    _, ids = index.search(q, int(min(k, index.ntotal)))
    ids = ids[0]
    return ids[ids >= 0]


def nbytes(index) -> int:
    """Approximate memory the index holds (codes, ids and the coarse centroids)."""
    return int(index.ntotal * (index.code_size + 8) + index.nlist * index.d * 4)
