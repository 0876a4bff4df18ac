"""Retrieval query time (embedding excluded) for libraries of 1k, 10k and 100k entries.

    python -m bench.retrieval [--repeats 30] [--out docs/benchmarks.md]

Synthetic libraries with the real feature dimension (256, ReLU-like sparse non-negative features) and 9
geometric features; one query = ``backend.retrieval.rank`` (JS over the library, or over the Bhattacharyya
shortlist above 5,000 entries, then the geometric re-sort). Also reports the shortlist's recall of the exact
top-5 at each size.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from backend.retrieval import LibraryIndex, rank
from backend.scoring import Features, RetrievalWeights, js_distance, to_distribution
from bench.report import emit, machine


class _Lib:
    def __init__(self, n):
        self.root = "/synthetic"
        self.entries = [{"id": f"e{i}", "label": None, "pose": {"type": "image", "path": "x"}} for i in range(n)]

    def thumbnail(self, i):
        return f"/synthetic/{i}.png"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    rows = []
    for n in (1_000, 10_000, 100_000):
        emb = np.maximum(rng.normal(size=(n, 256)), 0) * rng.gamma(0.5, size=(n, 1))
        dist = to_distribution(emb).astype(np.float32)
        geo = rng.normal(size=(n, 9))
        idx = LibraryIndex(library=_Lib(n), dist=dist, sqrt_dist=np.sqrt(dist), geometry=geo, key="bench")
        times, recall = [], []
        for r in range(args.repeats + 3):
            q = to_distribution(emb[rng.integers(n)] + np.maximum(rng.normal(size=256), 0) * 0.3)
            qg = rng.normal(size=9)
            t = time.perf_counter()
            top = rank(idx, Features(q[None], qg[None]), top_k=5, weights=RetrievalWeights(beta=0.0))
            if r >= 3:
                times.append((time.perf_counter() - t) * 1000)
                exact = set(np.argsort(js_distance(q, dist))[:5])
                recall.append(len(exact & {int(c["id"][1:]) for c in top}) / 5)
        times.sort()
        rows.append((n, np.median(times), times[int(0.95 * (len(times) - 1))], np.mean(recall)))
    lines = [
        f"### Retrieval query time, {time.strftime('%Y-%m-%d')}",
        "",
        f"Machine: {machine()}.",
        "",
        "| library size | median ms | p95 ms | recall of exact top-5 |",
        "|---:|---:|---:|---:|",
    ]
    lines += [f"| {n:,} | {m:.2f} | {p:.2f} | {r:.2f} |" for n, m, p, r in rows]
    emit(lines, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
