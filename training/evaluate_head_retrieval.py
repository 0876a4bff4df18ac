"""Retrieval on the built-in library with the human network's class probabilities, before and after its head
(``backend/calibration.py``): ANR and top-1 per expression for FER2013 test and CK+ queries.

    python -m training.evaluate_head_retrieval [--out docs/evaluation]

Scores (lower is closer), each query against the 84 entries of ``backend/assets/library``:

- ``served``: alpha * JS(DeepExpr features) + beta * geo, as the backend serves today (the character network;
  the head does not enter it);
- ``label``: JS between the query's 7 class probabilities and the entry's declared label (one-hot: the
  built-in entries carry a label and no intensity), the term ``training/rig_scoring.py`` studied;
- ``js + 8 label + 0.2 geo``: the weights that study chose on our toons (FER2013 val, leave one toon out).

Each label-using score is given twice: class probabilities of the network alone (softmax, no flip) and of the
shipped head (flip TTA, geometry fusion, calibration, logit adjustment). Queries come from the crop caches
(v3, with landmarks); nothing here is fitted.
"""

from __future__ import annotations

import argparse
import json
import logging
import os

import numpy as np
import torch

from backend.calibration import cnn_probabilities, head_for
from backend.engine import DEFAULT_EXPRESSION_MODEL, Engine, EngineConfig
from backend.library import BUILTIN_LIBRARY, load_library
from backend.retrieval import build_index
from backend.scoring import RetrievalWeights, js_distance, query_geometry, to_distribution
from deepexpr_blender.core.vocabulary import LABELS

from .data import load_dataset, to_input
from .evaluate_retrieval import PAPER
from .metrics import average_normalized_rank

log = logging.getLogger(__name__)


def label_distance(probs: np.ndarray, entry_labels: np.ndarray) -> np.ndarray:
    """(Q, N) JS distance between class probabilities and one-hot declared labels."""
    onehot = np.eye(len(LABELS))[entry_labels]
    return np.stack([js_distance(p, onehot) for p in probs])


def measure(s: np.ndarray, y: np.ndarray, entry_labels: np.ndarray) -> dict:
    rel = y[:, None] == entry_labels[None]
    anr = average_normalized_rank(s, rel)
    top1 = entry_labels[np.argmin(s, axis=1)] == y
    per = {LABELS[k]: {"anr": round(float(anr[y == k].mean()), 4), "top1": round(float(top1[y == k].mean()), 3)}
           for k in np.unique(y)}  # fmt: skip
    return {
        "anr": round(float(np.mean([v["anr"] for v in per.values()])), 4),
        "top1": round(float(np.mean([v["top1"] for v in per.values()])), 4),
        "per_expression": per,
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=DEFAULT_EXPRESSION_MODEL, help="the human network (its head beside it)")
    ap.add_argument("--cache-dir", default="cache")
    ap.add_argument("--out", default=os.path.join("docs", "evaluation"))
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(1)
    engine = Engine(EngineConfig(device="cpu", expression_model=args.model))
    lib = load_library(BUILTIN_LIBRARY)
    index = build_index(engine, lib)
    entry_labels = np.array([LABELS.index(e["label"]) for e in lib.entries])
    head = head_for(engine.expression.path)
    assert head is not None, "no head beside the network"
    weights = RetrievalWeights()
    queries = {
        "fer2013_test": load_dataset("fer2013", "test", cache_dir=args.cache_dir),
        "ckplus": load_dataset("ckplus", "all", cache_dir=args.cache_dir),
    }
    report: dict = {"library": "backend/assets/library (84 entries)", "weights": {}, "queries": {}}
    for name, q in queries.items():
        x = q["x"]
        emb = np.concatenate([engine.embed_crops(list(x[i : i + 256]), engine.retrieval_model)
                              for i in range(0, len(x), 256)])  # fmt: skip
        js = np.stack([js_distance(p, index.dist) for p in to_distribution(emb)])
        qg = query_geometry(q["geo"].astype(np.float64))
        geo = np.linalg.norm(qg[:, None] - index.geometry[None], axis=2) / np.sqrt(qg.shape[1])
        geo = np.where(np.isnan(geo), np.nanmedian(geo, axis=1, keepdims=True), geo)
        net = engine.expression.module
        chunks = [to_input(x[i : i + 512]) for i in range(0, len(x), 512)]
        p_plain = np.concatenate([cnn_probabilities(net, t, False) for t in chunks])
        p_head = np.concatenate(
            [head.from_crops(net, t, q["lm"][i * 512 : (i + 1) * 512], q["geo"][i * 512 : (i + 1) * 512])
             for i, t in enumerate(chunks)]
        )  # fmt: skip
        y = q["y"]
        keep = np.isin(y, entry_labels)
        lab_plain, lab_head = label_distance(p_plain, entry_labels), label_distance(p_head, entry_labels)
        scores = {
            "served: js + beta geo": weights.alpha * js + weights.beta * geo,
            "label only, network alone": lab_plain,
            "label only, with head": lab_head,
            "js + 8 label + 0.2 geo, network alone": js + 8 * lab_plain + 0.2 * geo,
            "js + 8 label + 0.2 geo, with head": js + 8 * lab_head + 0.2 * geo,
        }
        report["queries"][name] = {k: measure(s[keep], y[keep], entry_labels) for k, s in scores.items()}
        report["queries"][name]["n"] = int(keep.sum())
        for k, r in report["queries"][name].items():
            if k != "n":
                log.info("%-14s %-40s ANR %.3f top-1 %.3f", name, k, r["anr"], r["top1"])
    report["weights"] = {"alpha": weights.alpha, "beta": weights.beta}
    report["paper_deepexpr"] = PAPER["deepexpr"]
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "head_retrieval.json"), "w") as f:
        json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
