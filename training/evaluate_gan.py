"""Evaluate expression generation on held-out CK+ subjects: SSIM / PSNR beside the paper, expression accuracy
of the generated faces, smoothness of transitions, contact sheets.

    python -m training.evaluate_gan --gan ours=backend/weights/expression_gan.safetensors \\
        [--gan paper=runs/export/gan_paper.safetensors] --expression-model backend/weights/expression_human \\
        --out docs/evaluation

Metrics: scikit-image ``structural_similarity`` (data_range 255, gaussian_weights, sigma 1.5,
use_sample_covariance False: Wang et al. 2004) and ``peak_signal_noise_ratio`` (data_range 255), on 64x64
grayscale crops of the generated vs the real peak frame, for the held-out fold's neutral -> peak pairs.
"""

from __future__ import annotations

import argparse
import json
import os

import cv2
import numpy as np
import torch

from backend.align import align_face
from backend.landmarks import semantic_from_68
from backend.models import CLASSES, load_model, normalize_crops
from backend.sequence import interpolate
from backend.warp import PiecewiseAffineWarper

from .data import load_dataset
from .data.ckplus_pairs import fold_masks, neutral_to_peak
from .metrics import calc_metric

PAPER = {"Qiao et al. 2018 (paper)": (0.769, 27.665), "G2GAN (as reported by the paper)": (0.767, 24.420)}


def px(lm_norm: np.ndarray, size: int = 64) -> np.ndarray:
    return (lm_norm + 1) / 2 * (size - 1)


def gan_frames(model, src: np.ndarray, targets: list[np.ndarray]) -> list[np.ndarray]:
    x = torch.from_numpy(src.astype(np.float32) / 127.5 - 1)[None, None]
    with torch.inference_mode():
        y = model(x.expand(len(targets), -1, -1, -1), torch.from_numpy(np.stack(targets).astype(np.float32)))
    return [np.clip((f[0].numpy() + 1) * 127.5, 0, 255).astype(np.uint8) for f in y]


def classify(net, frames: list[np.ndarray], lms_px: list[np.ndarray]) -> np.ndarray:
    size = int(net.card.input["size"])
    crops = np.stack([align_face(f, semantic_from_68(lm), size=size).crop for f, lm in zip(frames, lms_px)])
    with torch.inference_mode():
        return net.module(normalize_crops(crops)).argmax(1).numpy()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gan", action="append", default=[], help="NAME=PATH of a GAN (.safetensors); repeatable")
    ap.add_argument("--expression-model", required=True)
    ap.add_argument("--fold", type=int, default=0)
    ap.add_argument("--frames", type=int, default=30, help="frames per transition in the smoothness test")
    ap.add_argument("--out", default=os.path.join("docs", "evaluation"))
    ap.add_argument(
        "--sheets",
        default=os.path.join("runs", "evaluation-sheets"),
        help="where the contact sheets go: they show CK+ faces, whose terms forbid redistribution, "
        "so they must not land in the repository",
    )
    args = ap.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    data = load_dataset("ckplus_pairs")
    _, test = fold_masks(data, args.fold)
    pairs = neutral_to_peak(data, test)
    dev = torch.device("cpu")
    gans = {}
    for spec in args.gan:
        name, path = spec.split("=", 1)
        m = load_model(path, "gan", dev)
        gans[name] = m.module.float().eval()
    expr = load_model(args.expression_model, "expression", dev)
    methods = ["input (trivial)", "warp (piecewise affine)", *gans]
    outs: dict[str, list[np.ndarray]] = {m: [] for m in methods}
    real, labels, tgt_px = [], [], []
    for u, v in pairs:
        src, tgt = data["x"][u], data["x"][v]
        outs["input (trivial)"].append(src)
        outs["warp (piecewise affine)"].append(PiecewiseAffineWarper(src, px(data["lm"][u])).warp(px(data["lm"][v])))
        for name, g in gans.items():
            outs[name].append(gan_frames(g, src, [data["lm"][v]])[0])
        real.append(tgt)
        labels.append(data["label"][v])
        tgt_px.append(px(data["lm"][v]))
    labels = np.array(labels)
    valid = labels < len(CLASSES)  # contempt (no canonical class) is left out of expression accuracy

    def expression_accuracy(pred: np.ndarray) -> float:
        return calc_metric("accuracy", y_true=labels[valid], y_pred=pred[valid], n_classes=len(CLASSES))

    rows = {}
    for m in methods:
        sp = np.array([[calc_metric(k, generated=g, real=r) for k in ("ssim", "psnr")] for g, r in zip(outs[m], real)])
        pred = classify(expr, outs[m], tgt_px)
        rows[m] = {
            "ssim": float(sp[:, 0].mean()),
            "ssim_std": float(sp[:, 0].std()),
            "psnr": float(sp[:, 1].mean()),
            "psnr_std": float(sp[:, 1].std()),
            "expression_accuracy": expression_accuracy(pred) if valid.any() else None,
        }
    real_pred = classify(expr, real, tgt_px)
    rows["real target (reference)"] = {
        "ssim": 1.0,
        "psnr": float("inf"),
        "expression_accuracy": expression_accuracy(real_pred),
    }
    # Smoothness: transitions neutral -> peak, landmarks interpolated (Eq. 6, linear).
    smooth = {}
    for m in ["warp (piecewise affine)", *gans]:
        curves = []
        for u, v in pairs[:12]:
            path = interpolate([(0, data["lm"][u]), (args.frames - 1, data["lm"][v])], args.frames, "linear")
            if m.startswith("warp"):
                w = PiecewiseAffineWarper(data["x"][u], px(data["lm"][u]))
                frames = [w.warp(px(p)) for p in path]
            else:
                frames = gan_frames(gans[m], data["x"][u], path)
            f = np.stack(frames).astype(np.float64)
            curves.append(np.abs(np.diff(f, axis=0)).mean(axis=(1, 2)))
        c = np.mean(curves, axis=0)
        smooth[m] = {
            "curve": c.tolist(),
            "mean_step": float(c.mean()),
            "max_step": float(c.max()),
            "max_over_mean": float(c.max() / max(c.mean(), 1e-9)),
        }
    report = {
        "fold": args.fold,
        "pairs": len(pairs),
        "subjects": int(len(set(data["subject"][test]))),
        "methods": rows,
        "smoothness": smooth,
        "ssim_settings": "skimage structural_similarity(data_range=255, "
        "gaussian_weights=True, sigma=1.5, use_sample_covariance=False); PSNR data_range=255; 64x64 gray",
    }
    json.dump(report, open(os.path.join(args.out, "gan.json"), "w"), indent=1, default=float)
    _plots(report, args.out)
    _sheets(data, pairs, outs, methods, gans, args)
    _markdown(report, os.path.join(args.out, "gan.md"))
    print(json.dumps({m: {k: round(v, 4) for k, v in r.items() if isinstance(v, float)} for m, r in rows.items()}))


def _plots(report: dict, out: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2))
    for m, s in report["smoothness"].items():
        ax.plot(range(1, len(s["curve"]) + 1), s["curve"], marker=".", label=m)
    ax.set_xlabel("frame step")
    ax.set_ylabel("mean |frame(t+1) - frame(t)| (gray levels)")
    ax.set_title("Transition smoothness (held-out CK+, 30 frames)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "gan_smoothness.png"), dpi=110)
    plt.close(fig)


def _sheets(data, pairs, outs, methods, gans, args) -> None:
    tile = 96
    rows = []
    for k in range(min(12, len(pairs))):
        u, v = pairs[k]
        cells = [outs[m][k] for m in methods] + [data["x"][v]]
        rows.append(np.hstack([cv2.resize(c, (tile, tile), interpolation=cv2.INTER_NEAREST) for c in cells]))
    header = np.full((24, tile * (len(methods) + 1)), 255, np.uint8)
    for j, name in enumerate([*methods, "real target"]):
        cv2.putText(header, name.split(" (")[0][:14], (j * tile + 3, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.38, 0, 1)
    os.makedirs(args.sheets, exist_ok=True)
    cv2.imwrite(os.path.join(args.sheets, "gan_contact_sheet.png"), np.vstack([header, *rows]))
    u, v = pairs[0]
    path = interpolate([(0, data["lm"][u]), (9, data["lm"][v])], 10, "ease_in_out")
    warper = PiecewiseAffineWarper(data["x"][u], px(data["lm"][u]))
    strips = [np.hstack([cv2.resize(warper.warp(px(p)), (tile, tile)) for p in path])]
    for g in gans.values():
        strips.append(np.hstack([cv2.resize(f, (tile, tile)) for f in gan_frames(g, data["x"][u], path)]))
    cv2.imwrite(os.path.join(args.sheets, "gan_transition_strip.png"), np.vstack(strips))


def _markdown(report: dict, path: str) -> None:
    lines = [
        "# Expression generation on held-out CK+ subjects",
        "",
        f"Fold {report['fold']} of 10 held out: {report['subjects']} subjects, {report['pairs']} neutral -> peak "
        "pairs of the same sequence. Metrics: " + report["ssim_settings"] + ".",
        "",
        "| method | SSIM | PSNR (dB) | expression accuracy |",
        "|---|---:|---:|---:|",
    ]
    for name, (s, p) in PAPER.items():
        lines.append(f"| {name} | {s:.3f} | {p:.3f} | – |")
    for m, r in report["methods"].items():
        acc = "–" if r["expression_accuracy"] is None else f"{r['expression_accuracy']:.3f}"
        ssim = f"{r['ssim']:.3f} ± {r.get('ssim_std', 0):.3f}"
        psnr = "∞" if r["psnr"] == float("inf") else f"{r['psnr']:.2f} ± {r.get('psnr_std', 0):.2f}"
        lines.append(f"| {m} | {ssim} | {psnr} | {acc} |")
    lines += [
        "",
        "Expression accuracy: the project's human expression network on the generated face, aligned by the "
        "target landmarks (7 classes; contempt left out).",
        "",
        "## Smoothness",
        "",
        "| method | mean step | max step | max / mean |",
        "|---|---:|---:|---:|",
    ]
    for m, s in report["smoothness"].items():
        lines.append(f"| {m} | {s['mean_step']:.2f} | {s['max_step']:.2f} | {s['max_over_mean']:.2f} |")
    lines += [
        "",
        "![smoothness](gan_smoothness.png)",
        "",
        "Contact sheet (input, methods, real target) for held-out subjects:",
        "",
        "![contact sheet](gan_contact_sheet.png)",
        "",
        "A transition (warp, then each GAN):",
        "",
        "![transition](gan_transition_strip.png)",
    ]
    open(path, "w", encoding="utf-8").write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
