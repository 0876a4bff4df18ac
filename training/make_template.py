"""Build the mean frontal landmark template used by ``backend.align`` from CK+ neutral frames.

    python -m training.make_template [--data ../shared/data/ckplus_pairs] [--out backend/assets/template68.json]

Each neutral frame is upscaled 4x, dlib finds the face and its 68 landmarks, the shapes are brought together
by generalised Procrustes analysis (rotation, scale, translation), and the mean is levelled (eye line
horizontal) and placed in a unit crop with a margin. Only the 136 averaged coordinates are written.
"""

from __future__ import annotations

import argparse
import glob
import json
import logging
import os

import cv2
import numpy as np

from backend.faces import FaceDetector, LandmarkPredictor

log = logging.getLogger(__name__)

MARGIN = 0.1  # fraction of the crop left free around the 68-point bounding box


def normalise(shape: np.ndarray) -> np.ndarray:
    c = shape - shape.mean(axis=0)
    return c / np.linalg.norm(c)


def procrustes_mean(shapes: list[np.ndarray], iters: int = 10) -> np.ndarray:
    shapes = [normalise(s) for s in shapes]
    mean = shapes[0]
    for _ in range(iters):
        aligned = []
        for s in shapes:
            u, _, vt = np.linalg.svd(s.T @ mean)
            aligned.append(s @ (u @ vt))
        mean = normalise(np.mean(aligned, axis=0))
    return mean


def place_in_unit_crop(mean: np.ndarray) -> np.ndarray:
    le, re = mean[36:42].mean(axis=0), mean[42:48].mean(axis=0)
    angle = np.arctan2(re[1] - le[1], re[0] - le[0])
    c, s = np.cos(-angle), np.sin(-angle)
    pts = mean @ np.array([[c, s], [-s, c]])
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    scale = (1 - 2 * MARGIN) / (hi - lo).max()
    return (pts - (lo + hi) / 2) * scale + 0.5


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.path.join("..", "shared", "data", "ckplus_pairs"))
    ap.add_argument("--out", default=os.path.join("backend", "assets", "template68.json"))
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO)
    det, lmk = FaceDetector(upsample=1), LandmarkPredictor()
    shapes = []
    files = sorted(glob.glob(os.path.join(args.data, "neutral", "*.png")))
    for f in files:
        g = cv2.resize(cv2.imread(f, cv2.IMREAD_GRAYSCALE), (192, 192), interpolation=cv2.INTER_CUBIC)
        rgb = np.repeat(g[:, :, None], 3, axis=2)
        faces = det.detect(rgb)
        if faces:
            shapes.append(lmk.predict(rgb, faces[0].box))
    if not shapes:
        raise SystemExit(f"no faces found under {args.data}")
    template = place_in_unit_crop(procrustes_mean(shapes))
    out = {
        "description": "Mean frontal dlib-68 landmarks in unit crop coordinates (x right, y down).",
        "source": f"Procrustes mean of {len(shapes)} of {len(files)} CK+ neutral frames; margin {MARGIN}",
        "points": np.round(template, 5).tolist(),
    }
    with open(args.out, "w", encoding="utf-8") as fh:
        json.dump(out, fh, indent=1)
    log.info("wrote %s from %d shapes", args.out, len(shapes))


if __name__ == "__main__":
    main()
