"""Fit the human network's post-hoc head (``backend/calibration.py``): a geometry MLP on the aligned landmarks
(FER2013 train), then late fusion, calibration and logit adjustment on FER2013 val. Reports FER2013 test and
CK+ zero-shot (never fitted on) for each step, ECE and a reliability diagram before and after.

    python -m training.fit_head [--model backend/weights/expression_human.safetensors] [--export true]
        [--experts runs/<run>/expert.safetensors,...]

Writes ``<report-dir>/human_head.json`` and ``reliability_fer2013_test.png``; ``--export true`` writes the head
beside the network (``<stem>_head.json`` + ``.safetensors``). Needs the v3 crop caches (with landmarks): they
are built on first use.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from backend.calibration import (
    GEO_DIM,
    Expert,
    GeometryNet,
    Head,
    cnn_probabilities,
    geometry_input,
    head_stem,
    mirror_landmarks,
    save_head,
)
from backend.models import CLASSES, load_model

from .config import field, parse_configs
from .data import load_dataset, to_input
from .metrics import calc_metrics

log = logging.getLogger(__name__)

TAUS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5)


@dataclass
class HeadConfig:
    model: str = field("backend/weights/expression_human.safetensors", "the expression network to put a head on")
    cache_dir: str = field("cache", "crop caches (v3, with landmarks)")
    hidden: int = field(256, "width of the geometry MLP's two hidden layers")
    geo_epochs: int = field(40, "epochs of the geometry MLP on FER2013 train (best by val balanced accuracy)")
    geo_balance: float = field(0.5, "geometry MLP loss weight of a class = share ** -b")
    seed: int = field(0, "seed of the geometry MLP")
    threads: int = field(1, "torch CPU threads")
    report_dir: str = field("docs/evaluation", "where human_head.json and the reliability diagram go")
    export: bool = field(False, "write the head beside the network (<stem>_head.json, .safetensors)")
    experts: str = field(
        "",
        "comma-separated expression networks (.safetensors with a .json card, same input as --model) fused as "
        "experts; exported beside the head as <stem>_expert<k>",
    )


# ---------------------------------------------------------------------------------------------- measures
def ece(p: np.ndarray, y: np.ndarray, bins: int = 15, balanced: bool = False) -> float:
    """Expected calibration error of the top label (equal-width confidence bins); ``balanced``: every class
    weighs the same (samples weighted by 1 / their class count)."""
    conf, pred = p.max(1), p.argmax(1)
    w = 1.0 / np.bincount(y, minlength=p.shape[1])[y] if balanced else np.ones(len(y))
    w = w / w.sum()
    idx = np.minimum((conf * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            total += abs(np.sum(w[m] * (pred[m] == y[m])) - np.sum(w[m] * conf[m]))
    return float(total)


def measures(p: np.ndarray, y: np.ndarray) -> dict:
    m = calc_metrics(("accuracy", "macro_f1", "confusion"), y_true=y, y_pred=p.argmax(1), n_classes=len(CLASSES))
    cm = m["confusion"]
    present = cm.sum(1) > 0
    recall = np.diag(cm) / np.maximum(cm.sum(1), 1)
    return {
        "accuracy": round(m["accuracy"], 4),
        "balanced_accuracy": round(float(recall[present].mean()), 4),
        "macro_f1": round(m["macro_f1"], 4),
        "nll": round(float(-np.log(np.clip(p[np.arange(len(y)), y], 1e-12, 1)).mean()), 4),
        "ece": round(ece(p, y), 4),
        "ece_balanced": round(ece(p, y, balanced=True), 4),
        "recall": {c: round(float(r), 3) for c, r, k in zip(CLASSES, recall, present) if k},
    }


# ---------------------------------------------------------------------------------------------- fitting
def train_geometry(
    train: dict, val: dict, cfg: HeadConfig, feature_slice: slice = slice(None)
) -> tuple[GeometryNet, dict]:
    """The geometry MLP on FER2013 train (mirror augmentation, class-weighted), best epoch by val balanced
    accuracy. ``feature_slice`` picks input columns (ablation: the 9 geometric features only)."""
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    xs = [geometry_input(v, train["geo"])[:, feature_slice] for v in (train["lm"], mirror_landmarks(train["lm"]))]
    x_val = [geometry_input(v, val["geo"])[:, feature_slice] for v in (val["lm"], mirror_landmarks(val["lm"]))]
    y = train["y"]
    dim = xs[0].shape[1]
    net = GeometryNet(dim, cfg.hidden, len(CLASSES))
    net.mean.copy_(torch.from_numpy(xs[0].mean(0)))
    net.std.copy_(torch.from_numpy(np.maximum(xs[0].std(0), 1e-4)))
    share = np.bincount(y, minlength=len(CLASSES)) / len(y)
    wts = torch.tensor(share**-cfg.geo_balance / np.mean(share[y] ** -cfg.geo_balance), dtype=torch.float32)
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-3)
    steps = cfg.geo_epochs * (len(y) // 256)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 2e-3, total_steps=steps, pct_start=0.1)
    xt = [torch.from_numpy(v) for v in xs]
    yt = torch.from_numpy(y)
    best, best_state, history = -1.0, None, []
    for _ in range(cfg.geo_epochs):
        net.train()
        order = rng.permutation(len(y))
        for i in range(0, len(y) - 255, 256):
            idx = torch.from_numpy(order[i : i + 256])
            flip = torch.from_numpy(rng.random(len(idx)) < 0.5)
            xb = torch.where(flip[:, None], xt[1][idx], xt[0][idx])
            xb = xb + 0.003 * torch.randn_like(xb) * net.std  # landmark jitter, in each feature's own scale
            loss = F.cross_entropy(net(xb), yt[idx], weight=wts, label_smoothing=0.05)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        p = geometry_probabilities(net, x_val)
        bal = measures(p, val["y"])["balanced_accuracy"]
        history.append(bal)
        if bal > best:
            best, best_state = bal, {k: v.clone() for k, v in net.state_dict().items()}
    net.load_state_dict(best_state)
    net.eval()
    return net, {"val_balanced_accuracy": best, "best_epoch": int(np.argmax(history)), "in_dim": dim}


@torch.inference_mode()
def geometry_probabilities(net: GeometryNet, views: list[np.ndarray]) -> np.ndarray:
    net.eval()
    return np.mean([torch.softmax(net(torch.from_numpy(v)), 1).numpy() for v in views], axis=0).astype(np.float64)


def fit_fusion(
    p_cnn: np.ndarray,
    p_geo: np.ndarray | None,
    y: np.ndarray,
    balanced: bool = False,
    p_experts: list[np.ndarray] | None = None,
) -> tuple[float, float, np.ndarray, list[float]]:
    """(a, b, bias, c) minimising the NLL of softmax(a log p_cnn + sum_k c_k log p_k + b log p_geo + bias) on
    (p, y); with neither ``p_geo`` nor experts, b = 0 and no bias (plain temperature scaling: a = 1 / T).
    ``balanced``: every class weighs the same in the NLL (the probabilities of a world with uniform class
    priors)."""
    p_experts = p_experts or []
    logs = [torch.log(torch.from_numpy(np.clip(p, 1e-8, 1))) for p in [p_cnn, *p_experts]]
    lg = torch.log(torch.from_numpy(np.clip(p_geo, 1e-8, 1))) if p_geo is not None else torch.zeros_like(logs[0])
    yt = torch.from_numpy(y)
    counts = np.bincount(y, minlength=logs[0].shape[1])
    share = np.where(counts > 0, len(y) / np.maximum(counts, 1) / logs[0].shape[1], 0.0)
    cw = torch.from_numpy(share) if balanced else None
    fused = p_geo is not None or bool(p_experts)
    w = torch.full((len(logs),), 1.0 / len(logs), dtype=torch.float64, requires_grad=True)
    b = torch.tensor(0.5 if p_geo is not None else 0.0, dtype=torch.float64, requires_grad=p_geo is not None)
    bias = torch.zeros(logs[0].shape[1], dtype=torch.float64, requires_grad=fused)
    params = [w] + ([bias] if fused else []) + ([b] if p_geo is not None else [])
    opt = torch.optim.LBFGS(params, lr=0.5, max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        z = sum(w[k] * lk for k, lk in enumerate(logs)) + b * lg + bias
        loss = F.cross_entropy(z, yt, weight=cw) + 1e-4 * bias.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    wt = w.detach().numpy()
    return float(wt[0]), float(b.detach()), bias.detach().numpy(), [float(v) for v in wt[1:]]


def choose_tau(
    head: Head, p_cnn: np.ndarray, p_geo: np.ndarray | None, y: np.ndarray, p_experts: list[np.ndarray] = ()
) -> float:
    """The logit-adjustment strength with the best val balanced accuracy (ties: the smaller)."""
    scores = []
    for t in TAUS:
        head.tau = t
        scores.append(measures(head.fuse(p_cnn, p_geo, p_experts), y)["balanced_accuracy"])
    return TAUS[int(np.argmax(scores))]


# ---------------------------------------------------------------------------------------------- served check
SUBSET_PER_CLASS = 40


def fixed_subset(root: str, per_class: int = SUBSET_PER_CLASS) -> list:
    """The first ``per_class`` files (sorted) of each class folder of a FER2013 split: the fixed subset whose
    accuracy through the served path is recorded in the head's card and checked by tests/test_human_model.py."""
    from .data import list_class_folders

    items, seen = [], {}
    for it in list_class_folders(root):
        if seen.get(it.label, 0) < per_class:
            items.append(it)
            seen[it.label] = seen.get(it.label, 0) + 1
    return items


def served_predictions(engine, items: list) -> np.ndarray:
    """Labels through the served path (``Engine.classify_analysis``: the network, then its head); a face
    the detector misses in a tight data-set crop is placed by ``TIGHT_CROP_BOX``, as for the crop caches."""
    import cv2

    from backend.errors import DeepExprError
    from backend.imageio import from_array

    from .data.crops import TIGHT_CROP_BOX

    out = []
    for it in items:
        gray = cv2.imread(it.path, cv2.IMREAD_GRAYSCALE)
        dec = from_array(gray)
        try:
            fa = engine.analyze(dec)
        except DeepExprError:
            h, w = gray.shape
            fa = engine.analyze(dec, box=[v * s for v, s in zip(TIGHT_CROP_BOX, (w, h, w, h))])
        out.append(list(CLASSES).index(engine.classify_analysis(fa)["label"]))
    return np.asarray(out)


# ---------------------------------------------------------------------------------------------- report
def reliability_plot(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: str, bins: int = 15) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(curves), figsize=(4.2 * len(curves), 4.2), squeeze=False)
    for ax, (title, (p, y)) in zip(axes[0], curves.items()):
        conf, ok = p.max(1), p.argmax(1) == y
        idx = np.minimum((conf * bins).astype(int), bins - 1)
        centers = (np.arange(bins) + 0.5) / bins
        accs = np.array([ok[idx == b].mean() if (idx == b).any() else np.nan for b in range(bins)])
        counts = np.bincount(idx, minlength=bins)
        ax.bar(centers, np.nan_to_num(accs), width=1 / bins, edgecolor="k", alpha=0.7, label="accuracy")
        ax.plot([0, 1], [0, 1], "r--", label="perfect calibration")
        ax2 = ax.twinx()
        ax2.plot(centers, counts / counts.sum(), "g.-", alpha=0.6)
        ax2.set_ylabel("share of faces", color="g")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("confidence (top probability)")
        ax.set_ylabel("accuracy")
        ax.set_title(f"{title}\nECE {ece(p, y):.3f}", fontsize=9)
        ax.legend(loc="upper left", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    c, dry_run = parse_configs({"head": (HeadConfig, "")}, argv, __doc__)
    cfg: HeadConfig = c["head"]
    if dry_run:
        print(json.dumps(cfg.__dict__, indent=2))
        return
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(cfg.threads)
    t0 = time.process_time()
    fer = {s: load_dataset("fer2013", s, cache_dir=cfg.cache_dir) for s in ("train", "val", "test")}
    ck = load_dataset("ckplus", "all", cache_dir=cfg.cache_dir)
    sets = {"val": fer["val"], "test": fer["test"], "ckplus": ck}
    model = load_model(cfg.model, "expression", torch.device("cpu"))

    def cnn(net: torch.nn.Module, data: dict, flip: bool) -> np.ndarray:
        x = data["x"]
        return np.concatenate([cnn_probabilities(net, to_input(x[i : i + 512]), flip) for i in range(0, len(x), 512)])

    def cnn_probs(loaded) -> tuple[dict, dict]:
        """(plain, flip TTA) probabilities of a network on every set; re-runs read them from the cache."""
        memo = os.path.join(cfg.cache_dir, f"head-cnn-probs-{loaded.sha256[:16]}.npz")
        if os.path.exists(memo):
            with np.load(memo) as z:
                return {k: z[f"raw_{k}"] for k in sets}, {k: z[f"tta_{k}"] for k in sets}
        if loaded.card.input.get("size") != model.card.input.get("size"):
            raise SystemExit(f"{loaded.path}: input {loaded.card.input} differs from the main network's")
        raw = {k: cnn(loaded.module, d, False) for k, d in sets.items()}
        tta = {k: cnn(loaded.module, d, True) for k, d in sets.items()}
        np.savez(memo, **{f"raw_{k}": v for k, v in raw.items()}, **{f"tta_{k}": v for k, v in tta.items()})
        return raw, tta

    p_raw, p_tta = cnn_probs(model)
    expert_models = [load_model(p, "expert", torch.device("cpu")) for p in cfg.experts.split(",") if p]
    p_exp = [cnn_probs(m)[1] for m in expert_models]  # flip TTA, as served
    log.info("CNN probabilities done (%.0f s CPU)", time.process_time() - t0)

    geo9 = slice(GEO_DIM - 9, GEO_DIM)
    g9, g9_info = train_geometry(fer["train"], fer["val"], cfg, geo9)
    g, g_info = train_geometry(fer["train"], fer["val"], cfg)
    log.info("geometry MLPs: 9 features %s, landmarks + 9 %s", g9_info, g_info)

    def geo_p(netg: GeometryNet, data: dict, sl: slice = slice(None)) -> np.ndarray:
        views = [geometry_input(v, data["geo"])[:, sl] for v in (data["lm"], mirror_landmarks(data["lm"]))]
        return geometry_probabilities(netg, views)

    p_g9 = {k: geo_p(g9, d, geo9) for k, d in sets.items()}
    p_g = {k: geo_p(g, d) for k, d in sets.items()}
    log_prior = np.log(np.bincount(fer["train"]["y"], minlength=len(CLASSES)) / len(fer["train"]["y"]))
    yv = fer["val"]["y"]

    variants: dict[str, dict[str, np.ndarray]] = {
        "CNN": p_raw,
        "CNN + flip": p_tta,
        "geometry MLP (9 features)": p_g9,
        "geometry MLP (68 landmarks + 9 features)": p_g,
    }
    heads: dict[str, Head] = {}

    def geo_of(name: str) -> dict[str, np.ndarray]:
        return p_g9 if "(9 features)" in name or "geo9" in name else p_g

    a, _, _, _ = fit_fusion(p_tta["val"], None, yv)
    heads["CNN + flip, temperature"] = Head(a, 0.0, np.zeros(7), log_prior, 0.0, None)
    heads["CNN + flip, temperature, logit adjustment (tau 1)"] = Head(a, 0.0, np.zeros(7), log_prior, 1.0, None)
    heads["lead's recipe: log p_cnn + 0.5 log p_geo9 - log prior"] = Head(1.0, 0.5, np.zeros(7), log_prior, 1.0, None)
    for name, pg in (("9 features", p_g9), ("68 landmarks + 9 features", p_g)):
        a, b, bias, _ = fit_fusion(p_tta["val"], pg["val"], yv)
        h = Head(a, b, bias, log_prior, 0.0, None)
        heads[f"fused with geometry ({name}), fitted NLL (tau 0)"] = Head(a, b, bias, log_prior, 0.0, None)
        h.tau = choose_tau(h, p_tta["val"], pg["val"], yv)
        heads[f"fused with geometry ({name}), fitted, tau {h.tau} (chosen on val)"] = h
        # class-balanced NLL: the fit is already in a uniform-prior world, i.e. tau 1 relative to the log prior
        a, b, bias, _ = fit_fusion(p_tta["val"], pg["val"], yv, balanced=True)
        h = Head(a, b, bias + log_prior, log_prior, 1.0, None)
        h.tau = choose_tau(h, p_tta["val"], pg["val"], yv)
        heads[f"fused with geometry ({name}), fitted balanced NLL, tau {h.tau} (chosen on val)"] = h
    if expert_models:
        # the experts join the served recipe (landmark fusion, class-balanced NLL); and without geometry
        ev = [p["val"] for p in p_exp]
        for name, pg in (("no geometry", None), ("68 landmarks + 9 features", p_g)):
            a, b, bias, c = fit_fusion(p_tta["val"], None if pg is None else pg["val"], yv, True, ev)
            h = Head(a, b, bias + log_prior, log_prior, 1.0, None)
            h.experts = [Expert(m.path, w, m) for m, w in zip(expert_models, c)]
            h.tau = choose_tau(h, p_tta["val"], None if pg is None else pg["val"], yv, ev)
            heads[f"with {len(c)} expert(s), {name}, fitted balanced NLL, tau {h.tau} (chosen on val)"] = h
    # Served: the landmark fusion fitted by class-balanced NLL. Its objective is what the backend serves
    # (calibrated probabilities in a world where every expression is equally likely); the plain-NLL fit with
    # tau chosen reaches the same val balanced accuracy (within 0.002 on the shipped network).
    served_name = [k for k in heads if k.startswith("fused") and "68 landmarks" in k and "balanced NLL" in k][0]
    if expert_models:  # chosen before measuring: the experts are added to the served recipe
        served_name = [k for k in heads if k.startswith("with") and "68 landmarks" in k][0]
    report: dict = {"variants": {}, "fitted_on": "FER2013 val (4,991 faces)", "model": cfg.model}
    for name, p in variants.items():
        report["variants"][name] = {k: measures(p[k], sets[k]["y"]) for k in sets}
    for k, m in enumerate(expert_models):
        variants[f"expert {k + 1} + flip ({os.path.basename(m.path)})"] = p_exp[k]
        report["variants"][f"expert {k + 1} + flip ({os.path.basename(m.path)})"] = {
            s_: measures(p_exp[k][s_], sets[s_]["y"]) for s_ in sets
        }
    for name, h in heads.items():
        pg = geo_of(name) if h.b else None
        pe = p_exp if h.experts else []
        probs = {k: h.fuse(p_tta[k], None if pg is None else pg[k], [p[k] for p in pe]) for k in sets}
        report["variants"][name] = {
            **{k: measures(probs[k], sets[k]["y"]) for k in sets},
            "params": {
                "a": round(h.a, 4),
                "b": round(h.b, 4),
                "bias": np.round(h.bias, 3).tolist(),
                "tau": h.tau,
                "experts": [round(e.weight, 4) for e in h.experts],
            },
        }
        if name == served_name:
            served_probs = probs
    served = heads[served_name]
    served.geometry = g
    report["served"] = served_name
    report["geometry_mlps"] = {"9 features": g9_info, "68 landmarks + 9 features": g_info}
    natural = Head(served.a, served.b, served.bias, log_prior, 0.0, None, experts=served.experts)
    p_nat = natural.fuse(p_tta["test"], p_g["test"], [p["test"] for p in p_exp] if served.experts else [])
    os.makedirs(cfg.report_dir, exist_ok=True)
    yt = fer["test"]["y"]
    reliability_plot(
        {
            "before: CNN + flip (FER2013 test)": (p_tta["test"], yt),
            "after: fused + calibrated, tau 0 (natural priors)": (p_nat, yt),
            f"served: tau {served.tau} (class-balanced)": (served_probs["test"], yt),
        },
        os.path.join(cfg.report_dir, "reliability_fer2013_test.png"),
    )
    report["cpu_seconds"] = round(time.process_time() - t0, 1)
    with open(os.path.join(cfg.report_dir, "human_head.json"), "w") as f:
        json.dump(report, f, indent=2)
    for name, r in report["variants"].items():
        log.info(
            "%-70s val bal %.3f | test acc %.3f bal %.3f F1 %.3f ECE %.3f | CK+ acc %.3f bal %.3f",
            name,
            r["val"]["balanced_accuracy"],
            r["test"]["accuracy"],
            r["test"]["balanced_accuracy"],
            r["test"]["macro_f1"],
            r["test"]["ece"],
            r["ckplus"]["accuracy"],
            r["ckplus"]["balanced_accuracy"],
        )
    if cfg.export:
        s = report["variants"][served_name]
        card = {
            "architecture": "CalibratedHead",
            "classes": list(CLASSES),
            "input": {
                "cnn": "the expression network's softmax, averaged with the mirrored crop",
                "geometry": "68 aligned landmarks (fractions of the crop side) + backend.geometry's 9 features",
            },
            "data": "Geometry MLP: FER2013 train landmarks; fusion and calibration: FER2013 val. Non-commercial "
            "research terms (FER2013).",
            "metrics": {
                "fer2013_test_accuracy": s["test"]["accuracy"],
                "fer2013_test_balanced_accuracy": s["test"]["balanced_accuracy"],
                "fer2013_test_macro_f1": s["test"]["macro_f1"],
                "fer2013_test_ece": s["test"]["ece"],
                "fer2013_test_ece_class_balanced": s["test"]["ece_balanced"],
                "fer2013_test_ece_tau0": round(ece(p_nat, yt), 4),
                "fer2013_test_recall_per_class": s["test"]["recall"],
                "ckplus_zero_shot_accuracy": s["ckplus"]["accuracy"],
                "ckplus_zero_shot_recall_per_class": s["ckplus"]["recall"],
            },
            "reproduce": f"python -m training.fit_head --model {cfg.model} --export true"
            + (f" --experts {cfg.experts}" if cfg.experts else "")
            + "".join(f"  (expert {k}: {m.card.reproduce})" for k, m in enumerate(expert_models, 1)),
            "notes": "backend/calibration.py: p = softmax(a log p_cnn + sum_k c_k log p_expert_k + b log p_geo + bias "
            "- tau log prior); "
            f"{served_name}. Reliability diagram: docs/evaluation/reliability_fer2013_test.png.",
        }
        model_stem = cfg.model[: -len(".safetensors")] if cfg.model.endswith(".safetensors") else cfg.model
        for k, e in enumerate(served.experts, 1):  # the experts ship beside the head, under the network's name
            src = e.stem[: -len(".safetensors")] if e.stem.endswith(".safetensors") else e.stem
            dst = f"{model_stem}_expert{k}"
            for ext in (".safetensors", ".json"):
                if os.path.abspath(src + ext) != os.path.abspath(dst + ext):
                    shutil.copyfile(src + ext, dst + ext)
            e.stem = dst
        card["metrics"]["experts"] = [os.path.basename(e.stem) for e in served.experts]
        save_head(served, card, head_stem(cfg.model))
        log.info("wrote %s.json/.safetensors", head_stem(cfg.model))
        from backend.engine import Engine, EngineConfig

        from .data import SHARED_DATA

        engine = Engine(EngineConfig(device="cpu", expression_model=cfg.model, character_model=None))
        items = fixed_subset(os.path.join(SHARED_DATA, "fer2013", "test"))
        pred = served_predictions(engine, items)
        card["metrics"]["fer2013_test_subset_accuracy"] = round(float(np.mean(pred == [i.label for i in items])), 4)
        card["metrics"]["fer2013_test_subset"] = (
            f"first {SUBSET_PER_CLASS} files per class of fer2013/test (sorted), {len(items)} faces, through "
            "Engine.classify_analysis (tests/test_human_model.py)"
        )
        save_head(served, card, head_stem(cfg.model))
        log.info("served path on the fixed subset: %s", card["metrics"]["fer2013_test_subset_accuracy"])


if __name__ == "__main__":
    main()
