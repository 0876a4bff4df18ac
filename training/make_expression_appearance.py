"""Expression ratio images from CK+ same-subject pairs (``backend.appearance``).

    python -m training.make_expression_appearance [--exclude-fold K] [--out backend/assets/expression_appearance.npz]

For every neutral -> peak pair of the same sequence (``training.data.ckplus_pairs``, 64x64 gray crops): the
neutral crop is warped to the peak's landmarks (piecewise affine), the log-ratio peak / warp is taken, brought
onto the expression's mean shape and averaged per expression (mirrored pairs included, so the result is
symmetric). Writes 6 averaged 64x64 maps, the mean shapes, the deltas and each expression's peak scale (the
90th percentile of the pairs' landmark displacements projected on the mean delta: how far a strong CK+ peak
goes): statistics over 24-80 subjects per expression, not any one face. ``fit`` is also used by
``training.evaluate_transitions`` per held-out fold.
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np

from backend.appearance import APPEARANCE_PATH, AppearanceModel, mean_shapes
from backend.composite import face_mask
from backend.landmarks import MIRROR68
from backend.models import CLASSES
from backend.sequence import expression_deltas
from backend.warp import PiecewiseAffineWarper

from .data import load_dataset
from .data.ckplus_pairs import fold_masks, neutral_to_peak

EXPRESSIONS = ("anger", "disgust", "fear", "joy", "sadness", "surprise")
EPS = 16.0
FLIP = list(MIRROR68)  # iBUG 68 index of each point's mirror image


def _mirror(img: np.ndarray, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = pts[FLIP].copy()
    p[:, 0] = img.shape[1] - 1 - p[:, 0]
    return img[:, ::-1].copy(), p


def fit(data: dict, mask: np.ndarray) -> AppearanceModel:
    deltas_all = expression_deltas()
    deltas = np.stack([deltas_all[e] for e in EXPRESSIONS])
    shapes = mean_shapes(deltas)
    sums = np.zeros((len(EXPRESSIONS), 64, 64), np.float64)
    counts = np.zeros(len(EXPRESSIONS))
    px = lambda lm: (np.asarray(lm, np.float64) + 1) / 2 * 63  # noqa: E731
    for u, v in neutral_to_peak(data, mask):
        lab = int(data["label"][v])
        if lab >= len(CLASSES) or CLASSES[lab] not in EXPRESSIONS:
            continue
        k = EXPRESSIONS.index(CLASSES[lab])
        for mirror in (False, True):
            a, pa = data["x"][u], px(data["lm"][u])
            b, pb = data["x"][v], px(data["lm"][v])
            if mirror:
                (a, pa), (b, pb) = _mirror(a, pa), _mirror(b, pb)
            warp = PiecewiseAffineWarper(a, pa).warp(pb).astype(np.float32)
            lr = np.log((b.astype(np.float32) + EPS) / (warp + EPS))
            sums[k] += PiecewiseAffineWarper(lr, pb).warp(shapes[k])
            counts[k] += 1
    # How far a strong CK+ peak goes along its expression's mean direction: the 90th percentile of the pairs'
    # projections onto the mean delta (1 = the mean itself). A named expression at intensity 1 goes that far.
    proj: dict[int, list[float]] = {}
    for u, v in neutral_to_peak(data, mask):
        lab = int(data["label"][v])
        if lab < len(CLASSES) and CLASSES[lab] in EXPRESSIONS:
            proj.setdefault(EXPRESSIONS.index(CLASSES[lab]), []).append(data["lm"][v] - data["lm"][u])
    scale = np.ones(len(EXPRESSIONS))
    for k, ds in proj.items():
        d = np.asarray(ds, np.float64)
        m = d.mean(0)
        scale[k] = float(np.percentile((d * m).sum((1, 2)) / (m * m).sum(), 90))
    ratio = sums / np.maximum(counts, 1)[:, None, None]
    ratio *= np.stack([face_mask((64, 64), s, feather=0.10) for s in shapes])
    ratio = np.stack([cv2.GaussianBlur(r.astype(np.float32), (0, 0), 0.6) for r in ratio])
    model = AppearanceModel(EXPRESSIONS, ratio.astype(np.float32), shapes, deltas, scale)
    model.counts = counts  # type: ignore[attr-defined]
    return model


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--exclude-fold", type=int, default=-1, help="leave this subject fold out (-1: use all)")
    ap.add_argument("--out", default=APPEARANCE_PATH)
    args = ap.parse_args(argv)
    data = load_dataset("ckplus_pairs")
    mask = np.ones(len(data["x"]), bool) if args.exclude_fold < 0 else fold_masks(data, args.exclude_fold)[0]
    m = fit(data, mask)
    np.savez_compressed(
        args.out,
        expressions=np.array(EXPRESSIONS),
        log_ratio=m.log_ratio.astype(np.float16),
        shapes=m.shapes.astype(np.float32),
        deltas=m.deltas.astype(np.float32),
        counts=m.counts.astype(np.int32),  # type: ignore[attr-defined]
        peak_scale=m.peak_scale.astype(np.float32),
    )
    print({e: (int(c), round(float(s), 3)) for e, c, s in zip(EXPRESSIONS, m.counts, m.peak_scale)})  # type: ignore


if __name__ == "__main__":
    main()
