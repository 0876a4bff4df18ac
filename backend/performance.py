"""A test performance: one face photo acting a plan of held expressions with eased transitions between them,
made with the piecewise-affine warp (``backend.sequence`` / ``backend.warp``) and written as a 640x480 video at
its own frame rate. The stand-in for an actor in front of a webcam (tests, benchmarks, the docs' strip).

    python -m backend.performance --out take.avi [--image PATH] [--fps 25] [--motion 12]

The head drifts slowly (``motion`` pixels, a slow Lissajous path) so tracking has something to follow. The
truth (which expression is held over which frames) is written beside the video as JSON.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
from dataclasses import dataclass

import cv2
import numpy as np

from .sequence import EASINGS, expression_displacement
from .warp import PiecewiseAffineWarper

log = logging.getLogger(__name__)

# (expression, frames held, amount of the mean CK+ displacement): the default plan, picked so the human network
# tells the holds apart.
DEFAULT_PLAN: tuple[tuple[str, int, float], ...] = (
    ("neutral", 30, 1.0),
    ("joy", 35, 1.6),
    ("neutral", 25, 1.0),
    ("surprise", 35, 1.6),
    ("neutral", 30, 1.0),
)


@dataclass
class Hold:
    label: str
    start: int  # first frame the expression is fully reached
    end: int  # last frame it is held (inclusive)


def sample_face() -> np.ndarray:
    """scikit-image's astronaut photo (public domain, NASA), RGB."""
    import skimage.data

    return skimage.data.astronaut()


def _frame(warped: np.ndarray, center: np.ndarray, size: tuple[int, int], face_px: float, offset) -> np.ndarray:
    """A ``size`` (w, h) webcam frame around ``center`` of the warped photo, the face ``face_px`` wide."""
    w, h = size
    s = face_px / 150.0
    cx, cy = center + np.asarray(offset, float) / s
    m = np.array([[s, 0, w / 2 - s * cx], [0, s, h / 2 - s * cy]], np.float64)
    return cv2.warpAffine(warped, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def performance_frames(
    engine,
    rgb: np.ndarray | None = None,
    plan=DEFAULT_PLAN,
    transition: int = 8,
    size: tuple[int, int] = (640, 480),
    motion: float = 12.0,
    face_px: float = 190.0,
    period: float = 90.0,
):
    """(frames (RGB arrays), holds): ``plan`` acted by the face in ``rgb`` (default: the sample face)."""
    from .imageio import from_array

    rgb = sample_face() if rgb is None else rgb
    fa = engine.analyze(from_array(rgb))
    src = fa.points68 / fa.decoded.scale
    warper = PiecewiseAffineWarper(rgb, src)
    targets = [expression_displacement(src, label, intensity) for label, _, intensity in plan]
    ease = EASINGS["ease_in_out"]
    paths, holds = [], []
    for i, (label, hold, _) in enumerate(plan):
        if i:
            a, b = targets[i - 1], targets[i]
            for k in range(transition):
                t = float(ease(np.array((k + 1) / (transition + 1))))
                paths.append((1 - t) * a + t * b)
        holds.append(Hold(label, len(paths), len(paths) + hold - 1))
        paths += [targets[i]] * hold
    center = src.mean(axis=0)
    frames = []
    for f, pts in enumerate(paths):
        off = (motion * math.sin(2 * math.pi * f / period), 0.6 * motion * math.sin(2 * math.pi * f / (0.72 * period)))
        frames.append(_frame(warper.warp(pts), center, size, face_px, off))
    return frames, holds


def write_video(path: str, frames: list[np.ndarray], fps: float = 25.0) -> str:
    """Frames (RGB) as an MJPG AVI (OpenCV reads it everywhere, frame-exact)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    h, w = frames[0].shape[:2]
    wr = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    if not wr.isOpened():
        raise OSError(f"cannot write {path}")
    for f in frames:
        wr.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    wr.release()
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="the video to write (.avi)")
    ap.add_argument("--image", default=None, help="a face photo (default: the sample face)")
    ap.add_argument("--fps", type=float, default=25.0)
    ap.add_argument("--motion", type=float, default=12.0, help="head drift in pixels")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    from .engine import Engine, EngineConfig

    rgb = None if args.image is None else cv2.cvtColor(cv2.imread(args.image), cv2.COLOR_BGR2RGB)
    frames, holds = performance_frames(Engine(EngineConfig(device="cpu")), rgb, motion=args.motion)
    write_video(args.out, frames, args.fps)
    with open(os.path.splitext(args.out)[0] + ".json", "w", encoding="utf-8") as f:
        json.dump({"fps": args.fps, "frames": len(frames), "holds": [h.__dict__ for h in holds]}, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
