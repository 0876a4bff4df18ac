"""Retrieval on artist-made rigs nobody here designed (``../shared/data/rigs``), for evaluation only.

    python -m training.evaluate_rigs [--rigs weboji_boy ...] [--per-expression 15] [--out docs/evaluation]

For each rig, in headless Blender: import it, then build two libraries of the same poses (the documented
mapping of ``deepexpr_blender.core.expression_keys``: each expression the rig covers at 0.5 / 0.75 / 1.0, plus
its neutral):

- ``previous``: the add-on's current "Build library from rig" (``deepexpr_blender/rig_library.py``), given the
  poses the way its docs ask a user to (one keyed frame per pose on the mesh's shape keys, a pose marker named
  after the pose);
- ``face``: ``deepexpr_blender.rigs.builder`` (face-on thumbnails of the whole character, landmarks found on
  the mesh, labels from the mapping). ``face+geo`` is the same library with each entry's geometric features
  computed from its landmarks (what the backend would do if it filled them in), so the geometric re-sort runs.

Queries: CK+ (``ckplus48``, every subject, contempt left out) and FER2013 test faces whose expression the rig's
library has, at most ``--per-expression`` of each per set (seeded). Retrieval is the current backend's
(``backend.retrieval.build_index`` + ``rank`` over the whole library, alpha 1, beta 0.1, the shipped
networks). Reported per rig, set and library: mean ANR per expression (``training.metrics``), their mean, the
chance level ((1 - N_rel/N)/2 averaged the same way) and top-1 accuracy. Results go to ``<out>/rigs.json`` and
``<out>/rigs_results.md``, with two pictures holding no data-set face (``rigs_thumbnails.png``: each rig's
library; ``rigs_top5_sample_face.png``: the top-5 poses for the public-domain sample face); the libraries go
to ``--work`` (ignored).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import time
from dataclasses import asdict, dataclass

import numpy as np

from backend.geometry import FEATURE_NAMES, geometric_features
from deepexpr_blender.core.vocabulary import DEFAULT_ALPHA, DEFAULT_BETA, LABELS

from .config import add_dataclass_args, field, from_args, to_json
from .data import SHARED_DATA, Item, crop_cache, list_ckplus, list_class_folders
from .metrics import average_normalized_rank

log = logging.getLogger(__name__)

RIG_FILES = {
    "rocketbox_female_adult_01": "Female_Adult_01_facial.fbx",
    "rocketbox_male_adult_08": "Male_Adult_08_facial.fbx",
    "valid_asian_f_1_casual": "Asian_F_1_Casual.glb",
    "weboji_boy": "weboji_boy.blend",
    "weboji_raccoon": "weboji_raccoon.blend",
}
VARIANTS = ("previous", "face", "face+geo")
# Scoring variants reported on the rigs, with the weights training.rig_scoring chose on our toons.
SCORING_VARIANTS = (
    "served: js + 0.1 geo",
    "features only (js)",
    "geometry only",
    "relative geometry only",
    "declared label only",
    "js + g*label + b*geo (chosen)",
)


@dataclass
class RigEvalConfig:
    rigs: tuple[str, ...] = field(tuple(RIG_FILES), "rig folders under ../shared/data/rigs")
    per_expression: int = field(15, "at most this many queries per expression and query set")
    seed: int = field(0, "query sampling seed")
    out: str = field(os.path.join("docs", "evaluation"), "where rigs.json and rigs_results.md go")
    work: str = field(os.path.join("cache", "rigs"), "libraries and sheets (ignored by git)")
    rebuild: bool = field(False, "rebuild libraries that already exist")
    alpha: float = field(DEFAULT_ALPHA, "JS weight")
    beta: float = field(DEFAULT_BETA, "geometric weight")
    scoring: str = field(
        os.path.join("docs", "evaluation", "rig_scoring.json"),
        "weights chosen on our toons by training.rig_scoring (skipped when absent)",
    )


# ------------------------------------------------------------------------------------------ libraries (bpy)
def load_rig(name: str):
    """A fresh Blender file holding only the rig; returns (face object, its character's objects)."""
    import bpy

    from deepexpr_blender.rigs import character, importing

    bpy.ops.wm.read_factory_settings(use_empty=True)
    objs = importing.import_character(os.path.join(SHARED_DATA, "rigs", name, RIG_FILES[name]))
    face = importing.pick_face_object(objs)
    return face, character.character_objects(face)


def build_previous(face, poses: list, out: str) -> str:
    """The previous pipeline: key each pose at its own frame with a pose marker, then rig_library's builder."""
    import bpy

    from deepexpr_blender import rig_library

    key = face.data.shape_keys
    blocks = key.key_blocks
    own = [p for p in poses if set(p.values) <= {face.name}]  # it can only pose one mesh
    used = sorted({k for p in own for k in p.values.get(face.name, {})})
    if key.animation_data is not None:
        key.animation_data.action = None
    for i, p in enumerate(own):
        vals = p.values.get(face.name, {})
        for k in used:
            blocks[k].value = vals.get(k, 0.0)
            blocks[k].keyframe_insert("value", frame=i + 1)
    action = key.animation_data.action
    for i, p in enumerate(own):
        m = action.pose_markers.new(p.name)
        m.frame = i + 1
    bpy.context.scene.frame_set(1)
    found = rig_library.shape_key_poses(face)
    rig_library.build_library(out, found, rig=face, name=os.path.basename(out))
    # the previous builder labels poses from marker names: joy_050 -> joy, relaxed_050 -> None
    return out


def build_libraries(name: str, work: str, rebuild: bool) -> dict:
    """Both libraries of one rig (kept when they exist); returns their paths and the build report."""
    from deepexpr_blender.rigs import builder

    paths = {v: os.path.join(work, name, v) for v in ("previous", "face")}
    report_path = os.path.join(work, name, "build.json")
    if not rebuild and all(os.path.exists(os.path.join(p, "library.json")) for p in paths.values()):
        with open(report_path, encoding="utf-8") as f:
            return json.load(f)
    face, objs = load_rig(name)
    poses, report = builder.rig_poses(objs)
    t = time.time()
    info = builder.build_rig_library(face, paths["face"], poses, builder.RigLibraryConfig(overwrite=True))
    info["build_seconds"] = round(time.time() - t, 2)
    face, objs = load_rig(name)
    t = time.time()
    shutil.rmtree(paths["previous"], ignore_errors=True)
    build_previous(face, poses, paths["previous"])
    out = {
        "paths": paths,
        "scheme": report.get("scheme"),
        "coverage": report.get("coverage"),
        "missing": report.get("missing"),
        "poses": [p.name for p in poses],
        "face": info,
        "previous_seconds": round(time.time() - t, 2),
    }
    with open(report_path, "w", encoding="utf-8") as f:
        json.dump(out, f, indent=1)
    return out


def add_geometry(src: str, dst: str) -> str:
    """A copy of library ``src`` whose entries carry geometric features computed from their landmarks."""
    from deepexpr_blender.core import library_format as fmt

    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src, dst)
    data = fmt.load(dst)
    for e in data["entries"]:
        if e.get("landmarks") is not None:
            e["geometry"] = [round(float(v), 5) for v in geometric_features(np.asarray(e["landmarks"]))]
    fmt.write(dst, data["name"], data["source"] + " + geometry", data["entries"], list(FEATURE_NAMES))
    return dst


# ------------------------------------------------------------------------------------------ queries
def query_sets(per_expression: int, seed: int, labels: set[str]) -> dict[str, dict]:
    """{"ckplus": ..., "fer_test": ...}: aligned crops, labels (canonical indices), geometry, paths."""
    sets = {
        "ckplus": list_ckplus(os.path.join(SHARED_DATA, "ckplus48")),
        "fer_test": list_class_folders(os.path.join(SHARED_DATA, "fer2013", "test")),
    }
    out = {}
    for name, items in sets.items():
        rng = np.random.default_rng(seed)
        picked: list[Item] = []
        for k, lab in enumerate(LABELS):
            if lab not in labels:
                continue
            pool = [it for it in items if it.label == k]
            if pool:
                idx = rng.choice(len(pool), size=min(per_expression, len(pool)), replace=False)
                picked += [pool[i] for i in sorted(idx)]
        data = crop_cache(picked, 48, workers=1, tag=f"rigs-{name}")
        data["path"] = np.array([it.path for it in picked])
        out[name] = data
    return out


# ------------------------------------------------------------------------------------------ retrieval
def rank_all(engine, lib_root: str, queries: dict, alpha: float, beta: float) -> np.ndarray:
    """(Q, N) position of every library entry in each query's ranking (0 = first), by the backend's rank()."""
    from backend.library import load_library
    from backend.retrieval import build_index, human_geometry_stats, rank, to_distribution

    lib = load_library(lib_root)
    index = build_index(engine, lib)
    n = len(lib.entries)
    emb = engine.embed_crops(list(queries["x"]), engine.retrieval_model)
    mean, std = human_geometry_stats()
    qgeo = (queries["geo"].astype(np.float64) - mean) / np.maximum(std, 1e-6)
    pos = np.empty((len(emb), n), dtype=np.int64)
    ids = {e["id"]: i for i, e in enumerate(lib.entries)}
    for q, (d, g) in enumerate(zip(to_distribution(emb), qgeo)):
        order = rank(index, d, g, top_k=n, alpha=alpha, beta=beta, shortlist=n)
        pos[q, [ids[c["id"]] for c in order]] = np.arange(n)
    return pos


def summarise(pos: np.ndarray, q_labels: np.ndarray, e_labels: list[str | None]) -> dict:
    """Per-expression ANR, chance and top-1 (canonical label names), and their means over expressions."""
    lab = np.array([LABELS.index(x) if x in LABELS else -1 for x in e_labels])
    rel = q_labels[:, None] == lab[None]
    anr = average_normalized_rank(pos.astype(np.float64), rel)
    n = rel.shape[1]
    chance = (1 - rel.sum(1) / n) / 2
    top1 = lab[np.argmin(pos, axis=1)] == q_labels
    out: dict = {"anr": {}, "chance": {}, "top1": {}, "n": {}}
    for k, name in enumerate(LABELS):
        m = q_labels == k
        if m.any():
            out["anr"][name] = float(np.nanmean(anr[m]))
            out["chance"][name] = float(chance[m].mean())
            out["top1"][name] = float(top1[m].mean())
            out["n"][name] = int(m.sum())
    for key in ("anr", "chance", "top1"):
        out[f"mean_{key}"] = float(np.mean(list(out[key].values()))) if out[key] else float("nan")
    out["top1_micro"] = float(top1.mean())
    return out


def top_label_counts(pos: np.ndarray, lib_entries: list[dict]) -> dict[str, int]:
    """How often each entry is the top hit (the issue's "one pose wins every query" symptom)."""
    top = np.argmin(pos, axis=1)
    ids, counts = np.unique(top, return_counts=True)
    return {lib_entries[i]["id"]: int(c) for i, c in sorted(zip(ids, counts), key=lambda t: -t[1])[:3]}


def evaluate(cfg: RigEvalConfig) -> dict:
    from backend.engine import Engine, EngineConfig
    from backend.library import load_library

    t0 = time.time()
    builds = {name: build_libraries(name, cfg.work, cfg.rebuild) for name in cfg.rigs}
    engine = Engine(EngineConfig(device="cpu"))
    results: dict = {"config": asdict(cfg), "rigs": {}}
    chosen = {}
    if cfg.scoring and os.path.exists(cfg.scoring):
        with open(cfg.scoring, encoding="utf-8") as f:
            chosen = {k: tuple(v) for k, v in json.load(f)["chosen_all"].items() if k in SCORING_VARIANTS}
        results["scoring_weights"] = chosen
    for name, b in builds.items():
        paths = dict(b["paths"])
        paths["face+geo"] = add_geometry(paths["face"], os.path.join(cfg.work, name, "face+geo"))
        labels = {e["label"] for e in load_library(paths["face"]).entries if e["label"]}
        qs = query_sets(cfg.per_expression, cfg.seed, labels)
        rig_res: dict = {"build": b, "labels": sorted(labels), "variants": {}}
        for variant in VARIANTS:
            lib = load_library(paths[variant])
            e_labels = [e.get("label") for e in lib.entries]
            rig_res["variants"][variant] = {}
            for qname, q in qs.items():
                pos = rank_all(engine, paths[variant], q, cfg.alpha, cfg.beta)
                s = summarise(pos, q["y"], e_labels)
                s["top_hits"] = top_label_counts(pos, lib.entries)
                s["entries"] = len(lib.entries)
                s["with_landmarks"] = sum(e.get("landmarks") is not None for e in lib.entries)
                rig_res["variants"][variant][qname] = s
                log.info("%s %s %s: ANR %.3f (chance %.3f) top-1 %.3f", name, variant, qname, s["mean_anr"],
                         s["mean_chance"], s["mean_top1"])  # fmt: skip
        if chosen:
            from .rig_scoring import metrics, parts, score

            rig_res["scoring"] = {}
            for qname, q in qs.items():
                p = parts(engine, paths["face+geo"], q)
                rig_res["scoring"][qname] = {v: metrics(p, score(p, *w)) for v, w in chosen.items()}
        results["rigs"][name] = rig_res
    results["seconds"] = round(time.time() - t0, 1)
    return results


# ------------------------------------------------------------------------------------------ report
def write_report(res: dict, out: str) -> None:
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "rigs.json"), "w", encoding="utf-8") as f:
        json.dump(res, f, indent=1)
    lines = [
        "# Retrieval on external rigs: results",
        "",
        "Generated by `python -m training.evaluate_rigs` (see [rigs.md](rigs.md) for the rigs, the mapping and "
        "what the libraries are). ANR: 0 is perfect; chance = (1 - N_rel/N)/2 per query. Means are over the "
        "expressions present (macro). `previous` = the add-on's current Build library from rig; `face` = the new "
        "face-on builder (landmarks, no geometry: the current backend ignores landmarks for the geometric term); "
        "`face+geo` = the same with geometric features from the landmarks.",
        "",
        "| rig | queries | library | entries | mean ANR | chance | top-1 | most frequent top hit |",
        "|---|---|---|---:|---:|---:|---:|---|",
    ]
    for name, r in res["rigs"].items():
        for variant, per_set in r["variants"].items():
            for qname, s in per_set.items():
                hit, cnt = next(iter(s["top_hits"].items()))
                nq = sum(s["n"].values())
                lines.append(
                    f"| {name} | {qname} ({nq}) | {variant} | {s['entries']} | {s['mean_anr']:.3f} | "
                    f"{s['mean_chance']:.3f} | {s['mean_top1']:.3f} | {hit} ({cnt}/{nq}) |"
                )
    lines += ["", "## Per expression (ANR / top-1)", ""]
    for name, r in res["rigs"].items():
        exprs = [lab for lab in LABELS if lab in r["labels"]]
        lines += [
            f"### {name}",
            "",
            "| queries | library | " + " | ".join(exprs) + " | mean |",
            "|---|---|" + "---:|" * (len(exprs) + 1),
        ]
        for variant, per_set in r["variants"].items():
            for qname, s in per_set.items():
                cells = [
                    f"{s['anr'][e]:.2f} / {s['top1'][e]:.2f}" if e in s["anr"] else "–" for e in exprs
                ]  # fmt: skip
                lines.append(
                    f"| {qname} | {variant} | " + " | ".join(cells) + f" | {s['mean_anr']:.3f} / {s['mean_top1']:.3f} |"
                )
        s0 = next(iter(r["variants"]["face"].values()))
        lines += ["", "chance: " + ", ".join(f"{e} {s0['chance'][e]:.2f}" for e in exprs if e in s0["chance"]), ""]
    if res.get("scoring_weights"):
        lines += [
            "## Scoring variants on the `face+geo` libraries",
            "",
            "Weights frozen from `training.rig_scoring` (chosen on our toons, leave one toon out; see "
            "[rig_scoring.md](rig_scoring.md)); nothing here was chosen on these rigs. Mean ANR / top-1.",
            "",
            "| rig | queries | " + " | ".join(res["scoring_weights"]) + " |",
            "|---|---|" + "---:|" * len(res["scoring_weights"]),
        ]
        for name, r in res["rigs"].items():
            for qname, per in r.get("scoring", {}).items():
                cells = [f"{per[v]['anr']:.3f} / {per[v]['top1']:.3f}" for v in res["scoring_weights"]]
                lines.append(f"| {name} | {qname} | " + " | ".join(cells) + " |")
        lines += [
            "",
            "Weights: "
            + "; ".join(f"{k}: a={w[0]} g={w[1]} b={w[2]} {w[3]}" for k, w in res["scoring_weights"].items()),
            "",
        ]
    lines += [f"Run time: {res['seconds']} s (2-core CPU, shared)."]
    with open(os.path.join(out, "rigs_results.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def _tile(path: str, tile: int, text: str = "", points=None, scale: float = 1.0) -> np.ndarray:
    import cv2

    img = cv2.imread(path)
    if points is not None:
        for x, y in np.asarray(points):
            cv2.circle(img, (int(round(x)), int(round(y))), 2, (40, 40, 230), -1)
    img = cv2.resize(img, (tile, tile), interpolation=cv2.INTER_AREA)
    if text:
        cv2.putText(img, text, (4, tile - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (20, 20, 20), 1, cv2.LINE_AA)
    return img


def write_sheets(work: str, rigs: tuple[str, ...], out: str, sample_face: str, tile: int = 128) -> list[str]:
    """Two pictures with no data-set face in them: every rig's library (neutral and each expression at full
    intensity, landmarks drawn), and the top-5 poses of each rig for the public-domain sample face."""
    import cv2

    from backend.engine import Engine, EngineConfig

    rows = []
    for name in rigs:
        data = json.load(open(os.path.join(work, name, "face", "library.json"), encoding="utf-8"))
        picked = [e for e in data["entries"] if e["intensity"] in (0.0, 1.0)]
        row = [
            _tile(os.path.join(work, name, "face", e["thumbnail"]), tile, e["expression"], e["landmarks"])
            for e in picked
        ]
        row += [np.full((tile, tile, 3), 255, np.uint8)] * (7 - len(row))
        rows.append(np.hstack(row))
    paths = [os.path.join(out, "rigs_thumbnails.png")]
    cv2.imwrite(paths[0], np.vstack(rows), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    engine = Engine(EngineConfig(device="cpu"))
    fa = engine.analyze(sample_face)
    query = cv2.cvtColor(cv2.resize(fa.aligned(tile).crop, (tile, tile)), cv2.COLOR_GRAY2BGR)
    rows = []
    for name in rigs:
        res = engine.retriever.retrieve(sample_face, os.path.join(work, name, "face+geo"), top_k=5)
        row = [query] + [
            _tile(c["thumbnail"], tile, f"{c['rank']}. {c['id'].split('-', 1)[1]}") for c in res["candidates"]
        ]
        rows.append(np.hstack(row))
    paths.append(os.path.join(out, "rigs_top5_sample_face.png"))
    cv2.imwrite(paths[1], np.vstack(rows), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    return paths


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_dataclass_args(ap, RigEvalConfig)
    ap.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")
    args = ap.parse_args(argv)
    cfg = from_args(RigEvalConfig, args)
    if args.dry_run:
        print(to_json(cfg))
        return
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    res = evaluate(cfg)
    write_report(res, cfg.out)
    import tempfile

    import cv2
    import skimage.data

    sample = os.path.join(tempfile.mkdtemp(), "astronaut.png")  # public domain (NASA), scikit-image
    cv2.imwrite(sample, cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR))
    write_sheets(cfg.work, cfg.rigs, cfg.out, sample)
    print(json.dumps({n: {v: {q: round(s["mean_anr"], 3) for q, s in d.items()} for v, d in r["variants"].items()}
                      for n, r in res["rigs"].items()}))  # fmt: skip


if __name__ == "__main__":
    main()
