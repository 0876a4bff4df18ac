"""Large pose libraries: index build throughput, then a fresh backend's first request, per-request time and
memory, and the vector index's recall against exact search.

    python -m bench.library_scale [--entries 1000000] [--work /tmp/deepexpr-scale] [--queries 100]
                                  [--keep] [--out docs/benchmarks.md]

The library is made from the built-in one: each of its 84 thumbnails is used by many entries, each with its
own landmarks (the built-in landmarks moved by a random similarity transform and per-point noise), so every
entry gets its own aligned crop, embedding and geometry; intensity and pose values vary too. Entries that
share a thumbnail are consecutive, so the build decodes each thumbnail once (as it would for a rig library
rendered into one folder).

Steps, each timed:
1. write ``library.json`` (and the thumbnails) under ``--work``;
2. build the index in a child process (``backend.retrieval.Retriever.index``: parse, validate, embed in
   batches, vector index), reporting entries/s and the child's peak memory;
3. start the real backend server (``backend.cli serve --stdio``) and time its first ``retrieve`` on the
   sample face (index load from disk), then ``--queries`` more, and read the server's resident memory;
4. recall@10 of the served ranking against exact scoring over the whole library (every part of the score,
   no shortlist), for queries made from held-back crops of the library's own thumbnails and the sample face.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time

import numpy as np

from bench.report import emit, machine

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def make_library(root: str, n: int, seed: int = 0) -> float:
    """Write an ``n``-entry library derived from the built-in one; returns the seconds it took."""
    from backend.library import BUILTIN_LIBRARY

    t = time.perf_counter()
    rng = np.random.default_rng(seed)
    with open(os.path.join(BUILTIN_LIBRARY, "library.json"), encoding="utf-8") as f:
        base = json.load(f)
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(os.path.join(root, "thumbs"))
    for e in base["entries"]:
        shutil.copyfile(os.path.join(BUILTIN_LIBRARY, e["thumbnail"]), os.path.join(root, e["thumbnail"]))
    per = -(-n // len(base["entries"]))
    tmp = os.path.join(root, "library.json.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        head = {k: v for k, v in base.items() if k != "entries"}
        f.write(json.dumps(head)[:-1] + ', "entries": [\n')
        k = 0
        for e in base["entries"]:
            lm = np.asarray(e["landmarks"], dtype=np.float64)
            c = lm.mean(axis=0)
            for j in range(per):
                if k >= n:
                    break
                ang, s = rng.normal(0, 0.06), np.exp(rng.normal(0, 0.05))
                rot = s * np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
                pts = (lm - c) @ rot.T + c + rng.normal(0, 2.0, size=2) + rng.normal(0, 0.6, size=lm.shape)
                scale = float(rng.uniform(0.6, 1.0))
                pose = dict(e["pose"], values={a: round(v * scale, 4) for a, v in e["pose"]["values"].items()})
                entry = {
                    "id": f"{e['id']}-{j:06d}",
                    "label": e["label"],
                    "thumbnail": e["thumbnail"],
                    "pose": pose,
                    "intensity": round(scale, 3),
                    "character": f"{e['pose']['target']}-{j % 64}",
                    "geometry": None,
                    "landmarks": np.round(pts, 2).tolist(),
                }
                f.write(("" if k == 0 else ",\n") + json.dumps(entry, separators=(",", ":")))
                k += 1
        f.write("\n]}\n")
    os.replace(tmp, os.path.join(root, "library.json"))
    return time.perf_counter() - t


def build(root: str, cache: str) -> dict:
    """Build the library's index in this process (run as a child): seconds, entries/s, peak memory."""
    from backend.engine import Engine, EngineConfig
    from backend.retrieval import Retriever, index_folder

    eng = Engine(EngineConfig(device="cpu"))
    reused = os.path.isfile(os.path.join(index_folder(root, eng.retrieval_model.sha256, cache), "meta.json"))
    t = time.perf_counter()
    last = [0.0]

    def progress(done: int, total: int, stage: str) -> None:
        if time.perf_counter() - last[0] > 30:
            last[0] = time.perf_counter()
            print(f"  {stage}: {done}/{total} after {last[0] - t:.0f} s", file=sys.stderr, flush=True)

    index = Retriever(eng, cache_dir=cache).index(root, progress=progress)
    secs = time.perf_counter() - t
    n = len(index.dist)
    return {
        "entries": n,
        "seconds": secs,
        "entries_per_s": n / secs,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "vector_index": index.ann is not None,
        "folder": index.folder,
        "reused": reused,
    }


def assemble(root: str, cache: str, src_root: str) -> dict:
    """An index for the library at ``root`` whose arrays are copied from the real build of the smaller library
    at ``src_root`` (made by ``make_library`` from the same thumbnails): entry k of thumbnail t takes the
    embedding, landmarks and geometry of entry k mod (src entries per thumbnail) of thumbnail t there, so labels
    and thumbnails agree and only the value spread is smaller than a real build's. Its entries (ids, poses)
    are the big library's own. For timing index load and queries at a size whose real build takes hours here;
    ``meta.json`` says ``assembled_from``."""
    from backend import index_store
    from backend.engine import Engine, EngineConfig
    from backend.retrieval import INDEX_VERSION, Retriever, index_folder, load_index
    from backend.scoring import library_classes

    t0 = time.perf_counter()
    eng = Engine(EngineConfig(device="cpu"))
    sha = eng.retrieval_model.sha256
    src = Retriever(eng, cache_dir=cache).index(src_root)
    folder = index_folder(root, sha, cache)
    if load_index(folder, root) is not None:  # (a stale one is removed, and assembled again below)
        Retriever(eng, cache_dir=cache).index(root)  # (re)builds a missing vector index from the stored arrays
        return {"seconds": time.perf_counter() - t0, "from": len(src.dist), "reused": True}
    with open(os.path.join(root, "library.json"), encoding="utf-8") as f:
        entries = json.load(f)["entries"]
    n, m = len(entries), len(src.dist)
    thumbs = sorted({e["thumbnail"] for e in entries}, key=[e["thumbnail"] for e in entries].index)
    per_big, per_src = -(-n // len(thumbs)), -(-m // len(thumbs))
    k = np.arange(n)
    t = k // per_big
    idx = np.minimum(t * per_src + (k - t * per_big) % per_src, m - 1)
    w = index_store.Writer(folder, n, src.dist.shape[1], src.geometry.shape[1], src.sem.shape[1])
    for a in range(0, n, 100_000):
        b = min(n, a + 100_000)
        w.arrays["dist"][a:b] = src.dist[idx[a:b]]
        w.arrays["sem"][a:b] = src.sem[idx[a:b]]
        w.arrays["how"][a:b] = src.how[idx[a:b]]
        w.add_entries(entries[a:b])
    arrays = {"geometry": np.asarray(src.geometry)[idx], "classes": library_classes(entries).astype(np.float32)}
    if src.relative is not None:
        arrays["relative"] = np.asarray(src.relative)[idx]
    tl = [e["thumbnail"] for e in entries]
    meta = {"version": INDEX_VERSION, "n": n, "model": sha, "thumbs": index_store.thumbs_check(root, tl),
            "thumb_dirs": index_store.thumbnail_dirs(tl), "assembled_from": src_root}  # fmt: skip
    del entries
    w.commit(meta, arrays)
    Retriever(eng, cache_dir=cache).index(root)  # builds the vector index from the stored arrays
    return {"seconds": time.perf_counter() - t0, "from": m}


def _rss_mb(pid: int) -> dict:
    out = {}
    with open(f"/proc/{pid}/status", encoding="utf-8") as f:
        for line in f:
            if line.startswith(("VmRSS", "RssAnon", "RssFile", "VmHWM")):
                k, v = line.split(":")
                out[k] = int(v.split()[0]) / 1024
    return out


def serve(root: str, cache: str, image: str, queries: int) -> dict:
    """A fresh backend server: first retrieve (index load), then ``queries`` more; times and memory."""
    sys.path.insert(0, ROOT)
    from tests.backend_client import BackendProcess

    os.environ["DEEPEXPR_CACHE"] = cache
    srv = BackendProcess()
    try:
        srv.initialize()
        srv.call("classify", {"image": image})  # networks loaded and warm: what remains is the library
        t = time.perf_counter()
        first = srv.call("retrieve", {"image": image, "library": root, "top_k": 10})
        first_s = time.perf_counter() - t
        times = []
        for _ in range(queries):
            t = time.perf_counter()
            srv.call("retrieve", {"image": image, "library": root, "top_k": 10})
            times.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        for _ in range(queries):
            srv.call("classify", {"image": image})
        analyze_ms = (time.perf_counter() - t) * 1000 / max(1, queries)
        mem = _rss_mb(srv.proc.pid)
    finally:
        srv.close()
    times.sort()
    return {
        "first_s": first_s,
        "median_ms": float(np.median(times)),
        "p95_ms": times[int(0.95 * (len(times) - 1))],
        "analyze_ms": analyze_ms,
        "memory_mb": mem,
        "top": [c["id"] for c in first["candidates"]],
    }


def recall(root: str, cache: str, image: str, queries: int, seed: int = 1) -> dict:
    """Recall@10 of ``rank`` (vector index shortlist) against exact scoring of every entry, and rank's time."""
    from backend.align import align_face
    from backend.engine import Engine, EngineConfig
    from backend.imageio import decode_image
    from backend.retrieval import Retriever, query_features, rank
    from backend.scoring import Features, RetrievalWeights, combine, distances, to_distribution

    eng = Engine(EngineConfig(device="cpu"))
    index = Retriever(eng, cache_dir=cache).index(root)
    weights = RetrievalWeights()
    n = len(index.dist)
    rng = np.random.default_rng(seed)
    qs = [query_features(eng, eng.analyze(image), None, weights)[0]]
    lib = index.library
    model = eng.retrieval_model
    size = int(model.card.input.get("size", 48))
    for i in rng.choice(n, size=queries - 1, replace=False):  # a library thumbnail, freshly jittered
        e = lib.entries[int(i)]
        dec = decode_image(lib.thumbnail(int(i)))
        sem = np.asarray(index.sem[int(i)], dtype=np.float64) + rng.normal(0, 1.0, size=(23, 2))
        crop = align_face(dec.rgb, sem * dec.scale, size=size).crop
        dist = to_distribution(eng.embed_crops([crop], model))
        probs = np.full((1, 7), 0.02)
        probs[0, ["neutral", "joy", "sadness", "surprise", "fear", "anger", "disgust"].index(e["label"])] = 0.88
        qs.append(Features(dist, np.asarray(index.geometry[int(i)])[None], probs, None))
    hits, full_hits, times = [], [], []
    chunk = 100_000
    for q in qs:
        t = time.perf_counter()
        served = rank(index, q, top_k=10, weights=weights)
        times.append((time.perf_counter() - t) * 1000)
        got = [c["id"] for c in served]
        # The same two stages with every entry as a candidate (no vector index, no shortlist): exact search.
        # Tie-aware: a served entry whose score equals the exact 10th's counts (copies of one embedding tie).
        exact = rank(index, q, top_k=10, weights=weights, candidates=np.arange(n))
        hits.append(sum(c["score"] <= exact[-1]["score"] + 1e-6 for c in served) / 10)
        # The whole score (geometry included) over every entry: what the two-stage design itself gives up.
        phi = np.concatenate(
            [combine(distances(q, index.features(np.arange(s, min(n, s + chunk)))), weights)[0]
             for s in range(0, n, chunk)]
        )  # fmt: skip
        full = {lib.entries[int(i)]["id"] for i in np.argsort(phi, kind="stable")[:10]}
        full_hits.append(len(full & set(got)) / 10)  # (ids: ties here are rare, geometry differs)
    times.sort()
    return {"recall_at_10": float(np.mean(hits)), "min_recall": float(np.min(hits)), "queries": len(qs),
            "full_score_overlap": float(np.mean(full_hits)), "rank_median_ms": float(np.median(times))}  # fmt: skip


def _child(step: str, *args: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "bench.library_scale", "--step", step, *args],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    sys.stderr.write(out.stderr[-3000:])
    if out.returncode != 0:
        raise SystemExit(f"step {step} failed ({out.returncode})")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--entries", type=int, default=1_000_000)
    ap.add_argument("--work", default="/tmp/deepexpr-scale")
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--keep", action="store_true", help="reuse the library and index already under --work")
    ap.add_argument("--out", default=None)
    ap.add_argument(
        "--assemble-from",
        type=int,
        default=0,
        metavar="N",
        help="do not build: copy the arrays of the real build of an N-entry library (see assemble)",
    )
    ap.add_argument("--no-recall", action="store_true")
    ap.add_argument("--step", choices=("build", "serve", "recall", "assemble"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    root, cache = os.path.join(args.work, f"library-{args.entries}"), os.path.join(args.work, "cache")
    image = os.path.join(args.work, "face.png")
    if args.step:
        fn = {"build": lambda: build(root, cache), "serve": lambda: serve(root, cache, image, args.queries),
              "recall": lambda: recall(root, cache, image, args.queries),
              "assemble": lambda: assemble(root, cache, os.path.join(args.work, f"library-{args.assemble_from}"))
              }[args.step]  # fmt: skip
        print(json.dumps(fn()))
        return 0
    os.makedirs(args.work, exist_ok=True)
    if not os.path.isfile(image):
        import cv2
        import skimage.data

        cv2.imwrite(image, skimage.data.astronaut()[:, :, ::-1])
    made = None
    if not (args.keep and os.path.isfile(os.path.join(root, "library.json"))):
        made = make_library(root, args.entries)  # a new library.json: a new (content-addressed) index
    size_mb = os.path.getsize(os.path.join(root, "library.json")) / 2**20
    if args.assemble_from:
        b = _child("assemble", "--entries", str(args.entries), "--work", args.work,
                   "--assemble-from", str(args.assemble_from))  # fmt: skip
    else:
        b = _child("build", "--entries", str(args.entries), "--work", args.work)
    s = _child("serve", "--entries", str(args.entries), "--work", args.work, "--queries", str(args.queries))
    r = None
    if not args.no_recall:
        r = _child(
            "recall", "--entries", str(args.entries), "--work", args.work, "--queries", str(min(args.queries, 50))
        )
    mem = s["memory_mb"]
    if args.assemble_from:
        built = (f"| index assembled from the real build of {b['from']:,} entries (see `assemble`: not a build) "
                 f"| {b['seconds']:.0f} s |")  # fmt: skip
    elif b.get("reused"):
        built = "| index build | (reused from an earlier run) |"
    else:
        built = (f"| index build (parse, validate, embed, geometry, vector index) | {b['seconds']:.0f} s "
                 f"({b['entries_per_s']:,.0f} entries/s), peak memory {b['peak_rss_mb']:,.0f} MB |")  # fmt: skip
    lines = [
        f"### Library scale: {args.entries:,} entries, {time.strftime('%Y-%m-%d')}",
        "",
        f"Machine: {machine()}. `python -m bench.library_scale --entries {args.entries}`; library.json "
        f"{size_mb:.0f} MB" + (f", written in {made:.0f} s" if made else "") + ".",
        "",
        "| measure | value |",
        "|---|---:|",
        built,
        f"| first retrieve of a fresh server (index load + one query) | {s['first_s'] * 1000:,.0f} ms |",
        f"| retrieve, median / p95 (whole request: face analysis + ranking) | {s['median_ms']:.1f} / "
        f"{s['p95_ms']:.1f} ms |",
        f"| of which face analysis alone (classify, mean of the same image) | {s['analyze_ms']:.1f} ms |",
        f"| server memory after the queries: RSS (anonymous + file-backed) | {mem.get('VmRSS', 0):,.0f} MB "
        f"({mem.get('RssAnon', 0):,.0f} + {mem.get('RssFile', 0):,.0f}); peak {mem.get('VmHWM', 0):,.0f} MB |",
    ]
    if r:
        lines += [
            f"| ranking alone (`rank`, median) | {r['rank_median_ms']:.1f} ms |",
            f"| recall@10 against exact search (the same ranking with every entry a candidate; {r['queries']} "
            f"queries) | {r['recall_at_10']:.3f} (lowest {r['min_recall']:.1f}) |",
            f"| overlap of the top 10 with the whole score (geometry too) over every entry | "
            f"{r['full_score_overlap']:.3f} |",
        ]
    emit(lines, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
