"""Scoring weights for rig libraries, chosen on our own toons (leave one toon out), never on external rigs;
and the neutral-calibration study ("Capture my neutral").

    python -m training.rig_scoring [--per-expression 60] [--out docs/evaluation]

Each toon (``deepexpr_blender.toon``) gets a library from the same path as a user's rig (the pose kinds'
``find_poses`` and the add-on's ``library_from_rig.build``: the AU table's seven expressions at 0.5 / 0.75 /
1.0 plus neutral, face-on thumbnails, the toon's exact landmarks). Every part of the score is the served one,
``backend.scoring`` through ``backend.retrieval.build_index`` (the entry's geometry computed from its stored
landmarks, its declared expression from its label and intensity):

- ``js`` (alpha): features, ``geo`` (beta): geometry, ``label`` (gamma): the human network's class
  probabilities against the entry's declared expression, ``geo_rel`` (delta): geometry relative to the actor's
  own neutral and to the character's neutral entry (CK+ pairs only: each peak frame's subject has its neutral
  first frame, what "Capture my neutral" gives); ``calibration`` removes that neutral's class bias.

Weights are chosen on FER2013 *val* queries over three toons and evaluated on the fourth (FER2013 test, CK+
and CK+ pairs), for each toon in turn; those chosen on all four toons are the served defaults
(``deepexpr_blender/core/vocabulary.py``). Calibration (delta, calibration) is chosen on CK+ pairs of half the
subjects over the four toons and measured on the other half, both ways round.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import itertools
import json
import logging
import os
import time

import numpy as np

from backend.scoring import Features, RetrievalWeights, calibrate, combine, distances, query_geometry, query_relative
from deepexpr_blender.core.vocabulary import LABELS

from .data import SHARED_DATA, Item, canonical, crop_cache, list_ckplus, list_class_folders
from .metrics import average_normalized_rank

log = logging.getLogger(__name__)

GAMMAS = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
BETAS = (0.0, 0.05, 0.1, 0.2, 0.4, 0.8)
ALPHAS = (0.0, 1.0)
DELTAS = (0.0, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2)
CALIBRATIONS = (0.0, 0.5, 1.0)
NEUTRAL = LABELS.index("neutral")


# ------------------------------------------------------------------------------------------ libraries
def build_toon_library(character: str, out: str, rebuild: bool = False) -> str:
    """A toon's library through the add-on's own Build library from rig path (bpy)."""
    if not rebuild and os.path.exists(os.path.join(out, "library.json")):
        return out
    import bpy

    from deepexpr_blender import poses
    from deepexpr_blender.library_from_rig.build import build_library
    from deepexpr_blender.toon import CHARACTERS, build_character

    bpy.ops.wm.read_factory_settings(use_empty=True)
    obj = build_character(next(c for c in CHARACTERS if c.name == character))
    build_library(out, poses.find_poses(obj), rig=obj, name=character, overwrite=True)
    return out


# ------------------------------------------------------------------------------------------ queries
def sample(items: list[Item], per_expression: int, seed: int, labels: set[str] | None = None) -> list[Item]:
    rng = np.random.default_rng(seed)
    out: list[Item] = []
    for k, lab in enumerate(LABELS):
        if labels is not None and lab not in labels:
            continue
        pool = [it for it in items if it.label == k]
        if pool:
            out += [pool[i] for i in sorted(rng.choice(len(pool), size=min(per_expression, len(pool)), replace=False))]
    return out


def ckplus_pairs(per_expression: int, seed: int) -> tuple[list[Item], list[Item]]:
    """(peak frames, each one's own neutral first frame) from ckplus_pairs, contempt left out."""
    root = os.path.join(SHARED_DATA, "ckplus_pairs")
    peaks, neutrals = [], {}
    with open(os.path.join(root, "manifest.csv"), newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            key = (row["subject"], row["sequence"])
            if row["expression"] == "neutral":
                neutrals[key] = Item(os.path.join(root, row["path"]), NEUTRAL, row["subject"])
            else:
                lab = canonical(row["expression"])
                if lab is not None:
                    peaks.append((key, Item(os.path.join(root, row["path"]), lab, row["subject"])))
    peaks = [(k, it) for k, it in peaks if k in neutrals]
    picked = sample([it for _, it in peaks], per_expression, seed)
    by_path = {it.path: k for k, it in peaks}
    return picked, [neutrals[by_path[it.path]] for it in picked]


def load_queries(per_expression: int, seed: int, sets: tuple[str, ...] = ("fer_val", "fer_test", "ckplus")) -> dict:
    """Aligned crops, labels and raw geometry of the query sets: FER2013 at most ``per_expression`` faces per
    expression, CK+ and CK+ pairs whole; ``ckplus_pairs`` also carries its subjects' neutral frames
    (``neutral``)."""
    lists = {
        "fer_val": lambda: list_class_folders(os.path.join(SHARED_DATA, "fer2013", "val")),
        "fer_test": lambda: list_class_folders(os.path.join(SHARED_DATA, "fer2013", "test")),
        "ckplus": lambda: list_ckplus(os.path.join(SHARED_DATA, "ckplus48")),
    }
    out = {
        n: crop_cache(sample(lists[n](), per_expression if n.startswith("fer") else 10**6, seed), 48, workers=1,
                      tag=f"rigs-{n}")
        for n in sets
        if n in lists
    }  # fmt: skip
    if "ckplus_pairs" in sets:
        peaks, neutrals = ckplus_pairs(10**6, seed)
        out["ckplus_pairs"] = crop_cache(peaks, 48, workers=1, tag="rigs-ckpairs-peak")
        out["ckplus_pairs"]["neutral"] = crop_cache(neutrals, 48, workers=1, tag="rigs-ckpairs-neutral")
    return out


def query_features(engine, q: dict) -> dict:
    """What the served pipeline computes for each query face (``backend.retrieval.query_features``), for a batch:
    feature distributions, z-scored and raw geometry, the human network's class probabilities; for sets with
    neutral frames, those frames' raw geometry and probabilities."""
    from backend.calibration import head_for
    from backend.scoring import to_distribution

    head = head_for(engine.expression.path)

    def probs(d: dict) -> np.ndarray:
        """As served: the network's head (flip TTA, landmark fusion, calibration) when one ships beside it."""
        x = engine.crops_tensor(list(d["x"]), engine.expression)
        if head is None:
            return engine.classify_tensor(x)[0].astype(np.float64)
        return head.from_crops(engine.expression.module, x, d["lm"], d["geo"]).astype(np.float64)

    emb = engine.embed_crops(list(q["x"]), engine.retrieval_model)
    out = {
        "dist": to_distribution(emb),
        "geo": query_geometry(q["geo"].astype(np.float64)),
        "raw": q["geo"].astype(np.float64),
        "probs": probs(q),
        "y": q["y"],
        "subject": q["subject"],
    }
    if "neutral" in q:
        out["neutral_raw"] = q["neutral"]["geo"].astype(np.float64)
        out["neutral_probs"] = probs(q["neutral"])
    return out


def query_side(qf: dict, calibration: float = 0.0, neutral: bool = False) -> Features:
    """The queries as the scorer's Features; with ``neutral`` (sets that have the subjects' neutral frames),
    the neutral-relative geometry and the class probabilities calibrated by ``calibration``."""
    classes, relative = qf["probs"], None
    if neutral and "neutral_raw" in qf:
        classes = np.concatenate([calibrate(p[None], n, calibration) for p, n in zip(qf["probs"], qf["neutral_probs"])])
        relative = np.concatenate([query_relative(g, n) for g, n in zip(qf["raw"], qf["neutral_raw"])])
    return Features(qf["dist"], qf["geo"], classes, relative)


# ------------------------------------------------------------------------------------------ score parts
def parts(engine, lib_root: str, qf: dict, calibration: float = 0.0, neutral: bool = False) -> dict:
    """Every distance of ``backend.scoring`` between the queries and a library's entries, and the labels."""
    from backend.library import load_library
    from backend.retrieval import build_index

    lib = load_library(lib_root)
    index = build_index(engine, lib)
    d = distances(query_side(qf, calibration, neutral), index.features())
    labels = np.array([LABELS.index(e["label"]) if e.get("label") in LABELS else -1 for e in lib.entries])
    return {"d": d, "entry_labels": labels, "y": qf["y"], "subject": qf["subject"], "index": index}


def metrics(p: dict, s: np.ndarray, keep: np.ndarray | None = None) -> dict:
    """Mean ANR and top-1 over the expressions present (macro), and chance."""
    y, lab = p["y"], p["entry_labels"]
    rel = y[:, None] == lab[None]
    ok = rel.any(axis=1) if keep is None else rel.any(axis=1) & keep
    y, rel, s = y[ok], rel[ok], s[ok]
    anr = average_normalized_rank(s, rel)
    top1 = lab[np.argmin(s, axis=1)] == y
    chance = (1 - rel.sum(1) / rel.shape[1]) / 2
    per = {LABELS[k]: (float(anr[y == k].mean()), float(top1[y == k].mean())) for k in np.unique(y)}
    return {
        "anr": float(np.mean([v[0] for v in per.values()])),
        "top1": float(np.mean([v[1] for v in per.values()])),
        "chance": float(np.mean([chance[y == k].mean() for k in np.unique(y)])),
        "per_expression": per,
        "chance_per_expression": {LABELS[k]: float(chance[y == k].mean()) for k in np.unique(y)},
        "n": {LABELS[k]: int((y == k).sum()) for k in np.unique(y)},
    }


def weights_of(a: float, g: float, b: float, delta: float = 0.0, c: float = 0.0) -> RetrievalWeights:
    return RetrievalWeights(alpha=a, beta=b, gamma=g, delta=delta, calibration=c)


def evaluate(p: dict, w: RetrievalWeights, keep: np.ndarray | None = None) -> dict:
    return metrics(p, combine(p["d"], w), keep)


VARIANTS = {  # name -> (alpha, gamma, beta); None = chosen on held-in toons
    "paper: js + 0.1 geo (previous default)": (1.0, 0.0, 0.1),
    "features only (js)": (1.0, 0.0, 0.0),
    "geometry only": (0.0, 0.0, 1.0),
    "declared label only": (0.0, 1.0, 0.0),
    "js + b*geo (b chosen)": None,
    "js + g*label (g chosen)": None,
    "js + g*label + b*geo (chosen)": None,
    "a*js + g*label + b*geo (all chosen)": None,
}
DEFAULT_VARIANT = "js + g*label + b*geo (chosen)"


def grid(name: str) -> list[tuple[float, float, float]]:
    gammas = GAMMAS if "label" in name else (0.0,)
    betas = BETAS if "geo" in name else (0.0,)
    alphas = ALPHAS if "all chosen" in name else (1.0,)
    return [(a, g, b) for a, g, b in itertools.product(alphas, gammas, betas) if a or g or b]


def subject_half(subjects: np.ndarray) -> np.ndarray:
    """The CK+ subjects used for choosing weights (True: a fixed half, by a hash of the subject id); the other
    half is only ever measured."""
    return np.array([int(hashlib.sha1(str(s).encode()).hexdigest(), 16) % 2 == 0 for s in subjects])


def selection_score(P: dict, toons: list[str], w: RetrievalWeights) -> float:
    """What weights are chosen by: the mean ANR over FER2013 val and the CK+ choosing half, over ``toons``."""
    fer = np.mean([evaluate(P[t]["fer_val"], w)["anr"] for t in toons])
    ck = np.mean([evaluate(P[t]["ckplus"], w, subject_half(P[t]["ckplus"]["subject"]))["anr"] for t in toons])
    return float((fer + ck) / 2)


def choose(P: dict, toons: list[str], name: str) -> tuple:
    """The grid point with the lowest selection score (FER2013 val and CK+ choosing half) over ``toons``."""
    best, best_v = None, np.inf
    for w in grid(name):
        v = selection_score(P, toons, weights_of(*w))
        if v < best_v - 1e-9:
            best, best_v = w, v
    return best


def calibration_study(P: dict, toons: list[str], base: tuple) -> dict:
    """On CK+ pairs with each subject's own neutral, on top of the chosen weights: (delta, calibration) chosen on
    the choosing half of the subjects over the toons, measured on the other half; beside no calibration."""
    a, g, b = base
    half = subject_half(P[toons[0]]["pairs"][0.0]["subject"])
    best, best_v = (0.0, 0.0), np.inf
    for delta, c in itertools.product(DELTAS, CALIBRATIONS):
        v = np.mean([evaluate(P[t]["pairs"][c], weights_of(a, g, b, delta, c), half)["anr"] for t in toons])
        if v < best_v - 1e-9:
            best, best_v = (delta, c), v
    delta, c = best
    out: dict = {"chosen": {"delta": delta, "calibration": c}, "per_toon": {}}
    variants = {
        "without": (0.0, 0.0),
        "with": (delta, c),
        "calibration only": (0.0, c),
        "relative geometry only": (delta, 0.0),
    }
    for name, (dd, cc) in variants.items():
        ms = {t: evaluate(P[t]["pairs"][cc], weights_of(a, g, b, dd, cc), ~half) for t in toons}
        out["per_toon"][name] = {t: (m["anr"], m["top1"]) for t, m in ms.items()}
        out[name] = {k: float(np.mean([m[k] for m in ms.values()])) for k in ("anr", "top1")}
    return out


def study(per_expression: int, seed: int, work: str, rebuild: bool = False) -> dict:
    from backend.engine import Engine, EngineConfig
    from deepexpr_blender.toon import CHARACTERS

    t0 = time.time()
    toons = [c.name for c in CHARACTERS]
    libs = {t: build_toon_library(t, os.path.join(work, f"toon_{t}", "addon"), rebuild) for t in toons}
    engine = Engine(EngineConfig(device="cpu"))
    queries = load_queries(per_expression, seed, ("fer_val", "fer_test", "ckplus", "ckplus_pairs"))
    log.info("queries: %s", {k: len(v["y"]) for k, v in queries.items()})
    qf = {n: query_features(engine, q) for n, q in queries.items()}
    P: dict = {}
    for t in toons:
        P[t] = {n: parts(engine, libs[t], qf[n]) for n in ("fer_val", "fer_test", "ckplus", "ckplus_pairs")}
        P[t]["pairs"] = {c: parts(engine, libs[t], qf["ckplus_pairs"], c, neutral=True) for c in CALIBRATIONS}
    out: dict = {
        "loso": {},
        "chosen_all": {},
        "setup": {"toons": toons, "queries": {k: int(len(v["y"])) for k, v in queries.items()}},
    }
    for name, fixed in VARIANTS.items():
        rows = {}
        for held in toons:
            w = fixed or choose(P, [t for t in toons if t != held], name)
            rows[held] = {"weights": list(w)}
            for qn in ("fer_test", "ckplus", "ckplus_pairs"):
                test = None if qn == "fer_test" else ~subject_half(P[held][qn]["subject"])
                rows[held][qn] = evaluate(P[held][qn], weights_of(*w), test)
        out["loso"][name] = rows
        out["chosen_all"][name] = list(fixed or choose(P, toons, name))
    out["calibration"] = calibration_study(P, toons, tuple(out["chosen_all"][DEFAULT_VARIANT]))
    out["seconds"] = round(time.time() - t0, 1)
    return out


def write_markdown(res: dict, path: str) -> None:
    lines = [
        "# Scoring for rig libraries: chosen on our toons, leave one toon out",
        "",
        "Generated by `python -m training.rig_scoring` (method in its docstring). Each toon's library is built by "
        "the add-on's Build library from rig path (19 entries: neutral + 6 expressions x 3 intensities); every "
        "number goes through the served scorer (`backend.scoring`). Weights are chosen on FER2013 val queries over "
        "the other three toons by the mean ANR of FER2013 val and a fixed half of the CK+ subjects (by a hash of the "
        "subject id); numbers are on the held-out toon (FER2013 test, and the other half of the CK+ subjects), "
        "averaged over the four. "
        f"Queries: {res['setup']['queries']}.",
        "",
        "| variant | FER2013 test ANR | top-1 | CK+ ANR | top-1 | CK+ pairs ANR | top-1 | a, g, b (all toons) |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, rows in res["loso"].items():
        cells = []
        for qn in ("fer_test", "ckplus", "ckplus_pairs"):
            cells += [np.mean([r[qn]["anr"] for r in rows.values()]), np.mean([r[qn]["top1"] for r in rows.values()])]
        a, g, b = res["chosen_all"][name]
        lines.append(f"| {name} | " + " | ".join(f"{c:.3f}" for c in cells) + f" | {a}, {g}, {b} |")
    ch = next(iter(next(iter(res["loso"].values())).values()))
    cal = res["calibration"]
    lines += [
        "",
        f"Chance: FER2013 test {ch['fer_test']['chance']:.3f}, CK+ {ch['ckplus']['chance']:.3f}, "
        f"CK+ pairs {ch['ckplus_pairs']['chance']:.3f}.",
        "",
        '## Neutral calibration ("Capture my neutral"), CK+ pairs with each subject\'s own neutral frame',
        "",
        "On top of the chosen weights; `delta` (neutral-relative geometry) and `calibration` (the neutral's class "
        f"bias removed) chosen on the choosing half of the CK+ subjects over the four toons (delta "
        f"{cal['chosen']['delta']}, calibration {cal['chosen']['calibration']}), measured on the other half:",
        "",
        "| | ANR | top-1 |",
        "|---|---:|---:|",
    ]
    for name in ("without", "with", "calibration only", "relative geometry only"):
        lines.append(f"| {name} | {cal[name]['anr']:.3f} | {cal[name]['top1']:.3f} |")
    lines += [
        "",
        f"Run time {res['seconds']} s.",
    ]  # fmt: skip
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--per-expression", type=int, default=60)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", default=os.path.join("cache", "rigs"))
    ap.add_argument("--out", default=os.path.join("docs", "evaluation"))
    ap.add_argument("--rebuild", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    res = study(args.per_expression, args.seed, args.work, args.rebuild)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "rig_scoring.json"), "w", encoding="utf-8") as f:
        json.dump(res, f, indent=1)
    write_markdown(res, os.path.join(args.out, "rig_scoring.md"))
    print(json.dumps({"chosen_all": res["chosen_all"], "calibration": res["calibration"]["chosen"]}))


if __name__ == "__main__":
    main()
