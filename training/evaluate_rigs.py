"""Retrieval on artist-made rigs nobody here designed (``../shared/data/rigs``), for evaluation only.

    python -m training.evaluate_rigs [--rigs weboji_boy ...] [--per-expression 60] [--out docs/evaluation]

For each rig, in headless Blender, two libraries of the same poses:

- ``addon``: the add-on's own "Build library from rig" path (``deepexpr_blender.poses.find_poses``, the pose
  kinds' documented mapping, then ``deepexpr_blender.library_from_rig.build``: the functions the operator
  calls): each expression the rig covers at 0.5 / 0.75 / 1.0, its neutral, face-on thumbnails, landmarks and
  labels;
- ``images``: the same poses rendered into a FERG-DB layout folder (``<rig>/<rig>_<expression>/*.png``, the
  whole head at 320 px: framed wider than a library thumbnail) and built as an image-folder library, which
  stores no landmarks and no intensity: the backend finds the face and landmarks on each image
  (``backend.character_face``: dlib, else the head's box) and labels come from the folder names. The found
  landmarks are compared with the exact ones the renders know (NME: mean error / inter-ocular distance).

Queries: FER2013 test faces (at most ``--per-expression`` per expression) and the CK+ faces of the measuring
half of the subjects (the other half chose the toon weights, ``training.rig_scoring``), of the expressions the
rig has; CK+ pairs of the measuring half for the neutral calibration. Everything is scored by the served
scorer: ``served`` is ``backend.retrieval.rank`` with the default ``RetrievalWeights`` (whole library,
shortlist = all); the other rows are the same distances under other weights (the geometric re-sort measured on
its own: ``served`` without geometry). ``previous`` is phase 1's measurement of the add-on's previous builder
(``rigs_phase1.json``, frozen: that builder is gone). Results go to ``<out>/rigs.json`` and
``<out>/rigs_results.md``, with two pictures holding no data-set face (``rigs_thumbnails.png``: each rig's
library; ``rigs_top5.jpg``: top-5 for the public-domain sample face and for renders of another rig).
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

from backend.scoring import RetrievalWeights
from deepexpr_blender.core.vocabulary import LABELS

from .config import add_dataclass_args, field, from_args, to_json
from .data import SHARED_DATA
from .rig_scoring import evaluate, load_queries, metrics, parts, query_features, query_side, subject_half

log = logging.getLogger(__name__)

RIG_FILES = {
    "rocketbox_female_adult_01": "Female_Adult_01_facial.fbx",
    "rocketbox_male_adult_08": "Male_Adult_08_facial.fbx",
    "valid_asian_f_1_casual": "Asian_F_1_Casual.glb",
    "weboji_boy": "weboji_boy.blend",
    "weboji_raccoon": "weboji_raccoon.blend",
}
LIBRARIES = ("addon", "images")
QUERY_SETS = ("ckplus", "fer_test")


@dataclass
class RigEvalConfig:
    rigs: tuple[str, ...] = field(tuple(RIG_FILES), "rig folders under ../shared/data/rigs")
    per_expression: int = field(60, "at most this many FER2013 test queries per expression")
    seed: int = field(0, "query sampling seed")
    out: str = field(os.path.join("docs", "evaluation"), "where rigs.json and rigs_results.md go")
    work: str = field(os.path.join("cache", "rigs"), "libraries and sheets (ignored by git)")
    rebuild: bool = field(False, "rebuild libraries that already exist")
    image_size: int = field(320, "side of the image-folder renders")
    image_margin: float = field(2.2, "image-folder renders: frame side / face region (library thumbnails: 1.5)")
    phase1: str = field(os.path.join("docs", "evaluation", "rigs_phase1.json"), "the previous builder's numbers")
    scoring: str = field(
        os.path.join("docs", "evaluation", "rig_scoring.json"), "the calibration chosen on our toons (rig_scoring)"
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


def build_addon_library(name: str, out: str) -> dict:
    """The add-on's Build library from rig, as its operator runs it (find the poses, build them)."""
    from deepexpr_blender import poses
    from deepexpr_blender.library_from_rig.build import build_from_rig

    face, _ = load_rig(name)
    t = time.time()
    found = poses.find_poses(face)
    info = build_from_rig(out, found, face, name=name, overwrite=True)
    info["total_seconds"] = round(time.time() - t, 2)
    info["poses"] = [p["name"] for p in found]
    info["kinds"] = sorted({p["kind"] for p in found})
    info["report"] = next((p.get("report") for p in found if p.get("report")), {})
    return info


def build_image_folder(name: str, work: str, size: int, margin: float) -> dict:
    """The rig's poses rendered into a FERG-DB layout folder (images only) and the image-folder library built
    from it by the add-on; the exact landmarks of each image are kept aside for measuring."""
    from deepexpr_blender import poses
    from deepexpr_blender.library_from_rig.build import build_image_library, landmark_roles
    from deepexpr_blender.poses.image_swap import KIND as IMAGES
    from deepexpr_blender.rigs import builder

    face, _ = load_rig(name)
    found = poses.find_poses(face)
    renders = os.path.join(work, name, "renders")
    cfg = builder.RigLibraryConfig(overwrite=True)
    cfg.thumbnail.size, cfg.thumbnail.margin = size, margin
    rig_poses = [
        builder.RigPose(p["name"], p["pose"], p["label"], p.get("expression"), p.get("intensity"), p.get("source", ""))
        for p in found
    ]
    builder.build_rig_library(face, renders, rig_poses, cfg, name=name, roles=landmark_roles(face, found))
    data = json.load(open(os.path.join(renders, "library.json"), encoding="utf-8"))
    folder = os.path.join(work, name, "ferg")
    shutil.rmtree(folder, ignore_errors=True)
    exact = {}
    for e in data["entries"]:
        expr = e["label"] or e["expression"] or "unlabelled"
        d = os.path.join(folder, name, f"{name}_{expr}")
        os.makedirs(d, exist_ok=True)
        dst = os.path.join(d, e["id"] + ".png")
        shutil.copyfile(os.path.join(renders, e["thumbnail"]), dst)
        exact[os.path.relpath(dst, folder)] = e["landmarks"]
    images = IMAGES.find_in_folder(folder)
    out = os.path.join(work, name, "images")
    shutil.rmtree(out, ignore_errors=True)
    build_image_library(out, images, name=f"{name} (images)", size=size)
    order = [os.path.relpath(p["pose"]["path"], folder) for p in images]
    return {"folder": folder, "exact": [exact[o] for o in order], "entries": len(order)}


def build_libraries(name: str, cfg: RigEvalConfig) -> dict:
    """Both libraries of one rig (kept when they exist unless ``rebuild``); their paths and build reports."""
    paths = {"addon": os.path.join(cfg.work, name, "addon"), "images": os.path.join(cfg.work, name, "images")}
    report_path = os.path.join(cfg.work, name, "build.json")
    if not cfg.rebuild and os.path.exists(report_path):
        with open(report_path, encoding="utf-8") as f:
            return json.load(f)
    out = {"paths": paths, "addon": build_addon_library(name, paths["addon"])}
    out["images"] = build_image_folder(name, cfg.work, cfg.image_size, cfg.image_margin)
    with open(report_path, "w", encoding="utf-8") as f:
        json.dump(out, f, indent=1)
    return out


# ------------------------------------------------------------------------------------------ retrieval
def served_positions(engine, lib_root: str, qf: dict) -> np.ndarray:
    """(Q, N) position of every entry in each query's ranking by the served ``backend.retrieval.rank``."""
    from backend.library import load_library
    from backend.retrieval import rank
    from backend.scoring import Features

    index = engine.retriever.index(load_library(lib_root))
    n = len(index.library.entries)
    ids = {e["id"]: i for i, e in enumerate(index.library.entries)}
    query = query_side(qf)
    pos = np.empty((len(qf["y"]), n), dtype=np.float64)
    for q in range(len(qf["y"])):
        one = Features(query.dist[q : q + 1], query.geometry[q : q + 1], query.classes[q : q + 1])
        order = rank(index, one, top_k=n, weights=RetrievalWeights(), shortlist=n)
        pos[q, [ids[c["id"]] for c in order]] = np.arange(n)
    return pos


def variants(calibration: dict) -> dict[str, RetrievalWeights]:
    d = RetrievalWeights()
    return {
        "served": d,
        "served without geometry": RetrievalWeights(alpha=d.alpha, beta=0.0, gamma=d.gamma),
        "paper: js + 0.1 geo": RetrievalWeights(alpha=1.0, beta=0.1, gamma=0.0),
        "features only": RetrievalWeights(alpha=1.0, beta=0.0, gamma=0.0),
        "geometry only": RetrievalWeights(alpha=0.0, beta=1.0, gamma=0.0),
        "declared label only": RetrievalWeights(alpha=0.0, beta=0.0, gamma=1.0),
    }


def landmark_error(engine, lib_root: str, exact: list, size: int) -> dict:
    """NME (mean point error / inter-ocular distance) of the landmarks the backend found on an image-folder
    library's thumbnails, against the exact ones; and how they were found."""
    import cv2

    from backend.landmarks import SEMANTIC_NAMES
    from backend.library import load_library

    lib = load_library(lib_root)
    index = engine.retriever.index(lib)
    sem, how = np.asarray(index.sem, dtype=np.float64), index.landmarks_from
    errs = []
    for i, ex in enumerate(exact):
        if ex is None or np.isnan(sem[i]).any():
            continue
        h, w = cv2.imread(lib.thumbnail(i)).shape[:2]
        e = np.asarray(ex, dtype=np.float64) * max(h, w) / float(size)  # the thumbnail is the image, resized
        li = [SEMANTIC_NAMES.index(n) for n in ("l_eye_outer", "l_eye_inner")]
        ri = [SEMANTIC_NAMES.index(n) for n in ("r_eye_outer", "r_eye_inner")]
        iod = np.linalg.norm(e[li].mean(0) - e[ri].mean(0))
        errs.append(float(np.linalg.norm(sem[i] - e, axis=1).mean() / max(iod, 1e-6)))
    counts = {h: int(sum(x == h for x in how)) for h in sorted(set(how))}
    return {"nme_mean": float(np.mean(errs)) if errs else None, "nme_median": float(np.median(errs)) if errs else None,
            "measured": len(errs), "found_by": counts}  # fmt: skip


def evaluate_rig(engine, name: str, b: dict, qf_all: dict, cal: dict, size: int) -> dict:
    from backend.library import load_library

    res: dict = {"build": {**b, "images": {k: v for k, v in b["images"].items() if k != "exact"}}, "libraries": {}}
    labels = {e["label"] for e in load_library(b["paths"]["addon"]).entries if e["label"]}
    res["labels"] = sorted(labels)
    keep_y = np.array([LABELS.index(x) for x in labels])
    for lib_name, path in b["paths"].items():
        res["libraries"][lib_name] = {}
        for qn in QUERY_SETS:
            qf = qf_all[qn]
            mask = np.isin(qf["y"], keep_y)
            if qn == "ckplus":
                mask &= ~subject_half(qf["subject"])
            p = parts(engine, path, qf)
            out = {v: evaluate(p, w, mask) for v, w in variants(cal).items()}
            pos = served_positions(engine, path, {k: qf[k][mask] for k in ("dist", "geo", "probs", "y")})
            ranked = metrics({**p, "y": p["y"][mask]}, pos)
            assert abs(ranked["anr"] - out["served"]["anr"]) < 1e-6, (ranked["anr"], out["served"]["anr"])
            out["served"]["top_hits"] = _top_hits(pos, p["index"].library.entries)
            res["libraries"][lib_name][qn] = out
            log.info("%s %s %s: served ANR %.3f top-1 %.3f (chance %.3f)", name, lib_name, qn,
                     out["served"]["anr"], out["served"]["top1"], out["served"]["chance"])  # fmt: skip
        if "ckplus_pairs" in qf_all:
            qf = qf_all["ckplus_pairs"]
            mask = np.isin(qf["y"], keep_y) & ~subject_half(qf["subject"])
            d = RetrievalWeights()
            with_cal = RetrievalWeights(
                alpha=d.alpha, beta=d.beta, gamma=d.gamma, delta=cal["delta"], calibration=cal["calibration"]
            )
            res["libraries"][lib_name]["ckplus_pairs"] = {
                "without calibration": evaluate(parts(engine, path, qf), d, mask),
                "with calibration": evaluate(parts(engine, path, qf, cal["calibration"], neutral=True), with_cal, mask),
            }
    res["landmarks_images"] = landmark_error(engine, b["paths"]["images"], b["images"]["exact"], size)
    return res


def _top_hits(pos: np.ndarray, entries: list[dict]) -> dict[str, int]:
    """How often each entry is the top hit (the issue's "one pose wins every query" symptom)."""
    ids, counts = np.unique(np.argmin(pos, axis=1), return_counts=True)
    return {entries[i]["id"]: int(c) for i, c in sorted(zip(ids, counts), key=lambda t: -t[1])[:3]}


def run(cfg: RigEvalConfig) -> dict:
    from backend.engine import Engine, EngineConfig

    t0 = time.time()
    builds = {name: build_libraries(name, cfg) for name in cfg.rigs}
    engine = Engine(EngineConfig(device="cpu"))
    queries = load_queries(cfg.per_expression, cfg.seed, ("fer_test", "ckplus", "ckplus_pairs"))
    qf = {n: query_features(engine, q) for n, q in queries.items()}
    cal = {"delta": 0.0, "calibration": 0.0}
    if os.path.exists(cfg.scoring):
        with open(cfg.scoring, encoding="utf-8") as f:
            cal = json.load(f)["calibration"]["chosen"]
    results: dict = {"config": asdict(cfg), "weights": asdict(RetrievalWeights()), "calibration": cal, "rigs": {}}
    for name, b in builds.items():
        results["rigs"][name] = evaluate_rig(engine, name, b, qf, cal, cfg.image_size)
    if os.path.exists(cfg.phase1):
        with open(cfg.phase1, encoding="utf-8") as f:
            results["phase1"] = {n: r["variants"]["previous"] for n, r in json.load(f)["rigs"].items()}
    results["seconds"] = round(time.time() - t0, 1)
    return results


# ------------------------------------------------------------------------------------------ report
def write_report(res: dict, out: str) -> None:
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "rigs.json"), "w", encoding="utf-8") as f:
        json.dump(res, f, indent=1)
    w = res["weights"]
    prev = res.get("phase1", {})
    lines = [
        "# Retrieval on external rigs: results",
        "",
        "Generated by `python -m training.evaluate_rigs` (see [rigs.md](rigs.md) for the rigs, the mapping and what "
        "the libraries are). ANR: 0 is perfect; chance = (1 - N_rel/N)/2 per query. Means are over the expressions "
        "present (macro). `addon` = the add-on's Build library from rig; `images` = the same poses as a rendered "
        "FERG-layout image folder (landmarks found by the backend, labels from folder names). `served` = the "
        f"served default weights (alpha {w['alpha']}, beta {w['beta']}, gamma {w['gamma']}). `previous` = the "
        "previous add-on builder (phase 1, 15 queries per expression, all CK+ subjects). CK+: the measuring half of "
        "the subjects.",
        "",
        "## Summary (served weights): mean ANR / top-1",
        "",
        "| rig | queries | chance | previous | addon | images | addon: done? |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for name, r in res["rigs"].items():
        for qn in QUERY_SETS:
            a = r["libraries"]["addon"][qn]["served"]
            im = r["libraries"]["images"][qn]["served"]
            p = prev.get(name, {}).get(qn)
            pc = f"{p['mean_anr']:.3f} / {p['mean_top1']:.2f}" if p else "–"
            ok = (
                ("ANR ok" if a["anr"] <= 0.20 else "ANR **no**")
                + ", "
                + ("top-1 ok" if a["top1"] >= 0.60 else "top-1 **no**")
            )
            lines.append(
                f"| {name} | {qn} ({sum(a['n'].values())}) | {a['chance']:.3f} | {pc} | {a['anr']:.3f} / "
                f"{a['top1']:.2f} | {im['anr']:.3f} / {im['top1']:.2f} | {ok} |"
            )
    names = list(next(iter(res["rigs"].values()))["libraries"]["addon"]["ckplus"])
    lines += [
        "",
        "## Score parts (addon libraries): mean ANR / top-1",
        "",
        "The geometric re-sort on its own: `served` against `served without geometry`.",
        "",
        "| rig | queries | " + " | ".join(names) + " |",
        "|---|---|" + "---:|" * len(names),
    ]
    for name, r in res["rigs"].items():
        for qn in QUERY_SETS:
            per = r["libraries"]["addon"][qn]
            lines.append(
                f"| {name} | {qn} | " + " | ".join(f"{per[v]['anr']:.3f} / {per[v]['top1']:.2f}" for v in names) + " |"
            )
    cal = res["calibration"]
    lines += [
        "",
        f"## Neutral calibration (CK+ pairs, measuring half; delta {cal['delta']}, calibration {cal['calibration']} "
        "chosen on our toons)",
        "",
        "| rig | library | without: ANR / top-1 | with the subject's own neutral: ANR / top-1 |",
        "|---|---|---:|---:|",
    ]
    for name, r in res["rigs"].items():
        for lib in LIBRARIES:
            c = r["libraries"][lib].get("ckplus_pairs")
            if c:
                a, b = c["without calibration"], c["with calibration"]
                lines.append(
                    f"| {name} | {lib} | {a['anr']:.3f} / {a['top1']:.2f} | {b['anr']:.3f} / {b['top1']:.2f} |"
                )
    lines += [
        "",
        "## Landmarks found on the image-folder renders (against the exact ones)",
        "",
        "| rig | images | found by | NME mean | NME median |",
        "|---|---:|---|---:|---:|",
    ]
    for name, r in res["rigs"].items():
        lm = r["landmarks_images"]
        fmt_ = lambda v: f"{v:.3f}" if v is not None else "–"  # noqa: E731
        lines.append(
            f"| {name} | {lm['measured']} | {lm['found_by']} | {fmt_(lm['nme_mean'])} | {fmt_(lm['nme_median'])} |"
        )
    lines += ["", "## Per expression (served weights): ANR / top-1, chance", ""]
    for name, r in res["rigs"].items():
        exprs = [lab for lab in LABELS if lab in r["labels"]]
        lines += [f"### {name}", "", "| queries | library | " + " | ".join(exprs) + " | mean |",
                  "|---|---|" + "---:|" * (len(exprs) + 1)]  # fmt: skip
        for qn in QUERY_SETS:
            p = prev.get(name, {}).get(qn)
            if p:
                cells = [f"{p['anr'][e]:.2f} / {p['top1'][e]:.2f}" if e in p["anr"] else "–" for e in exprs]
                lines.append(
                    f"| {qn} | previous | " + " | ".join(cells) + f" | {p['mean_anr']:.3f} / {p['mean_top1']:.2f} |"
                )
            for lib in LIBRARIES:
                s = r["libraries"][lib][qn]["served"]
                per = s["per_expression"]
                cells = [f"{per[e][0]:.2f} / {per[e][1]:.2f}" if e in per else "–" for e in exprs]
                lines.append(f"| {qn} | {lib} | " + " | ".join(cells) + f" | {s['anr']:.3f} / {s['top1']:.2f} |")
            s = r["libraries"]["addon"][qn]["served"]
            cells = [f"{s['chance_per_expression'][e]:.2f} (n={s['n'][e]})" if e in s["n"] else "–" for e in exprs]
            lines.append(f"| {qn} | chance | " + " | ".join(cells) + f" | {s['chance']:.3f} |")
        lines.append("")
    lines += [f"Run time: {res['seconds']} s (2-core CPU, shared)."]
    with open(os.path.join(out, "rigs_results.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def _tile(path: str, tile: int, text: str = "", points=None) -> np.ndarray:
    import cv2

    img = cv2.imread(path)
    if points is not None:
        for x, y in np.asarray(points):
            cv2.circle(img, (int(round(x)), int(round(y))), 2, (40, 40, 230), -1)
    img = cv2.resize(img, (tile, tile), interpolation=cv2.INTER_AREA)
    if text:
        cv2.putText(img, text, (4, tile - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.36, (20, 20, 20), 1, cv2.LINE_AA)
    return img


def write_sheets(work: str, rigs: tuple[str, ...], out: str, sample_face: str, tile: int = 96) -> list[str]:
    """Two pictures with no data-set face in them: every rig's library (neutral and each expression at full
    intensity, landmarks drawn), and the top-5 of each rig for the public-domain sample face and for renders
    of another rig (its joy and surprise at full intensity)."""
    import cv2

    from backend.engine import Engine, EngineConfig

    rows = []
    for name in rigs:
        root = os.path.join(work, name, "addon")
        data = json.load(open(os.path.join(root, "library.json"), encoding="utf-8"))
        picked = [e for e in data["entries"] if e["intensity"] in (0.0, 1.0) and e["label"]]
        row = [_tile(os.path.join(root, e["thumbnail"]), tile, e["expression"], e["landmarks"]) for e in picked]
        row += [np.full((tile, tile, 3), 255, np.uint8)] * (7 - len(row))
        rows.append(np.hstack(row))
    paths = [os.path.join(out, "rigs_thumbnails.png")]
    cv2.imwrite(paths[0], np.vstack(rows), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    engine = Engine(EngineConfig(device="cpu"))
    rows = []
    for k, name in enumerate(rigs):
        other = rigs[(k + 1) % len(rigs)] if not name.startswith("valid") else rigs[0]
        data = json.load(open(os.path.join(work, other, "addon", "library.json"), encoding="utf-8"))
        queries = [(sample_face, None, "sample face")]
        for lab in ("joy", "surprise"):
            e = next((e for e in data["entries"] if e["label"] == lab and e["intensity"] == 1.0), None)
            if e is not None:
                thumb = os.path.join(work, other, "addon", e["thumbnail"])
                queries.append((thumb, e["face_box"], f"{other[:10]} {lab}"))
        for img, box, text in queries:
            try:
                res = engine.retriever.retrieve(img, os.path.join(work, name, "addon"), top_k=5,
                                                box=None if box is None else [round(v) for v in box])  # fmt: skip
            except Exception as exc:  # noqa: BLE001 - a sheet row, not a result: say why and go on
                log.warning("%s on %s: %s", text, name, exc)
                continue
            row = [_tile(img, tile, text)]
            row += [_tile(c["thumbnail"], tile, f"{c['rank']}. {c['id'].split('-', 1)[1]}") for c in res["candidates"]]
            rows.append(np.hstack(row))
    paths.append(os.path.join(out, "rigs_top5.jpg"))
    cv2.imwrite(paths[1], np.vstack(rows), [cv2.IMWRITE_JPEG_QUALITY, 85])
    return paths


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_dataclass_args(ap, RigEvalConfig)
    ap.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")
    ap.add_argument("--sheets-only", action="store_true", help="only redraw the two pictures")
    args = ap.parse_args(argv)
    cfg = from_args(RigEvalConfig, args)
    if args.dry_run:
        print(to_json(cfg))
        return
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if not args.sheets_only:
        res = run(cfg)
        write_report(res, cfg.out)
    import tempfile

    import cv2
    import skimage.data

    sample = os.path.join(tempfile.mkdtemp(), "astronaut.png")  # public domain (NASA), scikit-image
    cv2.imwrite(sample, cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR))
    write_sheets(cfg.work, cfg.rigs, cfg.out, sample)


if __name__ == "__main__":
    main()
