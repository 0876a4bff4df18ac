"""Scoring variants for rig libraries, chosen on our own toons (leave one toon out), never on external rigs.

    python -m training.rig_scoring [--per-expression 15] [--out docs/evaluation]

Each toon (``deepexpr_blender.toon``) gets a library from the same builder and mapping as an external rig
(``deepexpr_blender.rigs.builder``: the AU table's seven expressions at 0.5 / 0.75 / 1.0 plus neutral, face-on
thumbnails, the toon's exact landmarks). For every query and entry the score's parts are computed once:

- ``js``: Jensen-Shannon distance between the DeepExpr features (the shipped character network), as served;
- ``geo``: the served geometric distance (query z-scored with human statistics, entries with the library's);
- ``geo_rel``: the same on geometry relative to a neutral: the entry minus the rig's own neutral entry, the
  query minus the actor's neutral (CK+ pairs: the subject's own first frame, i.e. a "Capture my neutral"
  calibration) or minus the mean human neutral (no calibration), each side divided by its own spread;
- ``label``: Jensen-Shannon distance between the human network's 7 class probabilities of the query and the
  entry's declared expression (the rig's label at its intensity, the rest on neutral: a mild joy is half
  neutral), for libraries whose entries carry a label.

A variant is phi = a*js + g*label + b*(geo or geo_rel). Weights are chosen on FER2013 *val* queries over three
toons and evaluated on the fourth (FER2013 test, CK+ and CK+ pairs queries), for each toon in turn; the
weights chosen on all four toons are the ones recommended for user rigs (``--apply`` in
``training.evaluate_rigs`` reports them on the external rigs).
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import os
import time

import numpy as np

from backend.geometry import FEATURE_NAMES, geometric_features
from backend.landmarks import semantic_from_68
from deepexpr_blender.core.vocabulary import LABELS

from .data import SHARED_DATA, Item, crop_cache, list_ckplus, list_class_folders
from .metrics import average_normalized_rank

log = logging.getLogger(__name__)

GAMMAS = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
BETAS = (0.0, 0.05, 0.1, 0.2, 0.4, 0.8)
ALPHAS = (0.0, 1.0)
NEUTRAL = LABELS.index("neutral")


# ------------------------------------------------------------------------------------------ libraries
def build_toon_library(character: str, out: str, rebuild: bool = False) -> str:
    """A toon's library from the rig builder (bpy)."""
    if not rebuild and os.path.exists(os.path.join(out, "library.json")):
        return out
    import bpy

    from deepexpr_blender.rigs import builder
    from deepexpr_blender.toon import CHARACTERS, build_character

    bpy.ops.wm.read_factory_settings(use_empty=True)
    obj = build_character(next(c for c in CHARACTERS if c.name == character))
    poses, _ = builder.rig_poses([obj])
    builder.build_rig_library(obj, out, poses, builder.RigLibraryConfig(overwrite=True))
    return out


def with_geometry(root: str) -> str:
    """Fill each entry's geometric features from its landmarks, in place (the backend does not yet)."""
    from deepexpr_blender.core import library_format as fmt

    data = fmt.load(root)
    for e in data["entries"]:
        if e.get("landmarks") is not None:
            e["geometry"] = [round(float(v), 5) for v in geometric_features(np.asarray(e["landmarks"]))]
    fmt.write(root, data["name"], data["source"], data["entries"], list(FEATURE_NAMES))
    return root


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
    import csv

    root = os.path.join(SHARED_DATA, "ckplus_pairs")
    peaks, neutrals = [], {}
    with open(os.path.join(root, "manifest.csv"), newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            key = (row["subject"], row["sequence"])
            if row["expression"] == "neutral":
                neutrals[key] = Item(os.path.join(root, row["path"]), NEUTRAL, row["subject"])
            else:
                from .data import canonical

                lab = canonical(row["expression"])
                if lab is not None:
                    peaks.append((key, Item(os.path.join(root, row["path"]), lab, row["subject"])))
    peaks = [(k, it) for k, it in peaks if k in neutrals]
    picked = sample([it for _, it in peaks], per_expression, seed)
    by_path = {it.path: k for k, it in peaks}
    return picked, [neutrals[by_path[it.path]] for it in picked]


def load_queries(per_expression: int, seed: int) -> dict[str, dict]:
    """Aligned crops, labels and geometry of the query sets; ``ckplus_pairs`` also carries ``neutral_geo``."""
    sets = {
        "fer_val": sample(list_class_folders(os.path.join(SHARED_DATA, "fer2013", "val")), per_expression, seed),
        "fer_test": sample(list_class_folders(os.path.join(SHARED_DATA, "fer2013", "test")), per_expression, seed),
        "ckplus": sample(list_ckplus(os.path.join(SHARED_DATA, "ckplus48")), per_expression, seed),
    }
    out = {name: crop_cache(items, 48, workers=1, tag=f"rigs-{name}") for name, items in sets.items()}
    peaks, neutrals = ckplus_pairs(per_expression, seed)
    out["ckplus_pairs"] = crop_cache(peaks, 48, workers=1, tag="rigs-ckpairs-peak")
    out["ckplus_pairs"]["neutral_geo"] = crop_cache(neutrals, 48, workers=1, tag="rigs-ckpairs-neutral")["geo"]
    return out


# ------------------------------------------------------------------------------------------ score parts
def human_neutral_geometry() -> np.ndarray:
    """Mean geometric features of a neutral human face (the alignment template: the CK+ neutral mean)."""
    from backend.align import template68

    return geometric_features(semantic_from_68(template68())).astype(np.float64)


def declared_distribution(label: str | None, intensity: float) -> np.ndarray:
    """An entry's declared expression as a 7-class distribution: its label at ``intensity``, the rest neutral
    (uniform for entries without a label)."""
    if label is None or label not in LABELS:
        return np.full(len(LABELS), 1.0 / len(LABELS))
    d = np.zeros(len(LABELS))
    s = 1.0 if label == "neutral" else float(np.clip(intensity, 0.0, 1.0))
    d[LABELS.index(label)] += s
    d[NEUTRAL] += 1.0 - s
    return d


def parts(engine, lib_root: str, q: dict) -> dict:
    """Score parts (Q, N) between queries ``q`` and a library, plus entry labels."""
    from backend.library import load_library
    from backend.retrieval import build_index, human_geometry_stats, js_distance, to_distribution

    lib = load_library(lib_root)
    index = build_index(engine, lib)
    emb = engine.embed_crops(list(q["x"]), engine.retrieval_model)
    qd = to_distribution(emb)
    js = np.stack([js_distance(p, index.dist) for p in qd])
    probs, _ = engine.classify_tensor(engine.crops_tensor(list(q["x"]), engine.expression))
    decl = np.stack([declared_distribution(e.get("label"), e.get("intensity", 1.0)) for e in lib.entries])
    label = np.stack([js_distance(p, decl) for p in probs.astype(np.float64)])
    hm, hs = human_geometry_stats()
    qg = (q["geo"].astype(np.float64) - hm) / np.maximum(hs, 1e-6)
    eg = index.geometry
    f = eg.shape[1]
    geo = np.linalg.norm(qg[:, None] - eg[None], axis=2) / np.sqrt(f)
    raw = np.array([e["geometry"] if e.get("geometry") else [np.nan] * f for e in lib.entries], dtype=np.float64)
    neutral = [i for i, e in enumerate(lib.entries) if e.get("label") == "neutral"]
    if neutral and not np.isnan(raw).any():
        d_e = raw - raw[neutral[0]]
        d_e = d_e / np.maximum(d_e.std(axis=0), 1e-6)
        ref = q.get("neutral_geo")
        ref = human_neutral_geometry()[None] if ref is None else ref.astype(np.float64)
        d_q = (q["geo"].astype(np.float64) - ref) / np.maximum(hs, 1e-6)
        geo_rel = np.linalg.norm(d_q[:, None] - d_e[None], axis=2) / np.sqrt(f)
    else:
        geo_rel = np.full_like(geo, np.nan)
    labels = np.array([LABELS.index(e["label"]) if e.get("label") in LABELS else -1 for e in lib.entries])
    return {"js": js, "label": label, "geo": geo, "geo_rel": geo_rel, "entry_labels": labels, "y": q["y"]}


def score(p: dict, a: float = 1.0, g: float = 0.0, b: float = 0.0, geo: str = "geo") -> np.ndarray:
    s = a * p["js"] + g * p["label"]
    if b:
        s = s + b * np.nan_to_num(p[geo], nan=float(np.nanmedian(p[geo])) if np.isfinite(p[geo]).any() else 0.0)
    return s


def metrics(p: dict, s: np.ndarray) -> dict:
    """Mean ANR and top-1 over the expressions present (macro), chance."""
    y, lab = p["y"], p["entry_labels"]
    rel = y[:, None] == lab[None]
    keep = rel.any(axis=1)
    y, rel, s = y[keep], rel[keep], s[keep]
    anr = average_normalized_rank(s, rel)
    top1 = lab[np.argmin(s, axis=1)] == y
    chance = (1 - rel.sum(1) / rel.shape[1]) / 2
    per = {LABELS[k]: (float(anr[y == k].mean()), float(top1[y == k].mean())) for k in np.unique(y)}
    return {
        "anr": float(np.mean([v[0] for v in per.values()])),
        "top1": float(np.mean([v[1] for v in per.values()])),
        "chance": float(np.mean([chance[y == k].mean() for k in np.unique(y)])),
        "per_expression": per,
    }


VARIANTS = {  # name -> (a, g, b, geometry part); None = chosen on held-in toons
    "served: js + 0.1 geo": (1.0, 0.0, 0.1, "geo"),
    "features only (js)": (1.0, 0.0, 0.0, "geo"),
    "geometry only": (0.0, 0.0, 1.0, "geo"),
    "relative geometry only": (0.0, 0.0, 1.0, "geo_rel"),
    "declared label only": (0.0, 1.0, 0.0, "geo"),
    "js + b*geo (b chosen)": None,
    "js + b*geo_rel (b chosen)": None,
    "js + g*label + b*geo (chosen)": None,
    "js + g*label + b*geo_rel (chosen)": None,
    "a*js + g*label + b*geo (all chosen)": None,
}


def grid(name: str) -> list[tuple[float, float, float, str]]:
    geo = "geo_rel" if "geo_rel" in name else "geo"
    gammas = GAMMAS if "label" in name else (0.0,)
    alphas = ALPHAS if "all chosen" in name else (1.0,)
    return [(a, g, b, geo) for a, g, b in itertools.product(alphas, gammas, BETAS) if a or g or b]


def choose(parts_by_toon: dict, toons: list[str], name: str) -> tuple:
    """The grid point with the lowest mean FER2013-val ANR over ``toons``."""
    best, best_v = None, np.inf
    for w in grid(name):
        v = np.mean(
            [metrics(parts_by_toon[t]["fer_val"], score(parts_by_toon[t]["fer_val"], *w))["anr"] for t in toons]
        )
        if v < best_v - 1e-9:
            best, best_v = w, v
    return best


def study(per_expression: int, seed: int, work: str, rebuild: bool = False) -> dict:
    from backend.engine import Engine, EngineConfig
    from deepexpr_blender.toon import CHARACTERS

    t0 = time.time()
    toons = [c.name for c in CHARACTERS]
    libs = {t: with_geometry(build_toon_library(t, os.path.join(work, f"toon_{t}", "face"), rebuild)) for t in toons}
    engine = Engine(EngineConfig(device="cpu"))
    queries = load_queries(per_expression, seed)
    P = {t: {qn: parts(engine, libs[t], q) for qn, q in queries.items()} for t in toons}
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
                rows[held][qn] = metrics(P[held][qn], score(P[held][qn], *w))
        out["loso"][name] = rows
        out["chosen_all"][name] = list(fixed or choose(P, toons, name))
    out["seconds"] = round(time.time() - t0, 1)
    return out


def write_markdown(res: dict, path: str) -> None:
    lines = [
        "# Scoring for rig libraries: chosen on our toons, leave one toon out",
        "",
        "Generated by `python -m training.rig_scoring` (method in its docstring). Each toon's library is built by "
        "the rig builder from the documented mapping (19 entries: neutral + 6 expressions x 3 intensities). "
        "Weights are chosen on FER2013 val queries over the other three toons; numbers are on the held-out toon, "
        "averaged over the four. CK+ pairs: relative geometry uses the subject's own neutral frame "
        "(calibration); FER2013 and CK+ use the mean human neutral (no calibration). "
        f"Queries: {res['setup']['queries']}.",
        "",
        "| variant | FER2013 test ANR | top-1 | CK+ ANR | top-1 | CK+ pairs ANR | top-1 | weights (all toons) |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, rows in res["loso"].items():
        cells = []
        for qn in ("fer_test", "ckplus", "ckplus_pairs"):
            cells += [np.mean([r[qn]["anr"] for r in rows.values()]), np.mean([r[qn]["top1"] for r in rows.values()])]
        a, g, b, geo = res["chosen_all"][name]
        lines.append(f"| {name} | " + " | ".join(f"{c:.3f}" for c in cells) + f" | a={a} g={g} b={b} {geo} |")
    ch = next(iter(next(iter(res["loso"].values())).values()))
    lines += [
        "",
        f"Chance: FER2013 test {ch['fer_test']['chance']:.3f}, CK+ {ch['ckplus']['chance']:.3f}, "
        f"CK+ pairs {ch['ckplus_pairs']['chance']:.3f}. Run time {res['seconds']} s.",
    ]
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--per-expression", type=int, default=15)
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
    print(json.dumps(res["chosen_all"]))


if __name__ == "__main__":
    main()
