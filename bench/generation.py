"""Generation speed: GAN frames per second at 64x64 in batch, the warp at 64x64 and 512x512, and a whole
24-frame 512x512 colour transition of the sample face (warp, then refine).

    python -m bench.generation [--out docs/benchmarks.md]

Uses the shipped GAN weights when present (speed does not depend on the weights' values; a randomly
initialised network of the same architecture otherwise).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from backend.gan import ExpressionGAN, GanConfig
from backend.warp import PiecewiseAffineWarper
from bench.report import emit, machine


def fps(fn, n_frames: int, repeats: int = 5) -> float:
    fn()
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return n_frames / float(np.median(ts))


def transition_rows(gan) -> list[tuple[str, float]]:
    """A whole 24-frame neutral -> surprise transition of the sample face at 512x512 colour, as ``generate``
    renders it (renderer set-up included, PNG writing not): warp, then refine, with and without the GAN."""
    import cv2
    import skimage.data

    from backend.appearance import load_appearance
    from backend.engine import Engine, EngineConfig
    from backend.imageio import from_array
    from backend.refine import FrameRenderer
    from backend.sequence import expression_target, interpolate

    rgb = skimage.data.astronaut()
    fa = Engine(EngineConfig(device="cpu", expression_model=None, character_model=None)).analyze(from_array(rgb))
    src = fa.to_original(fa.points68)
    path = interpolate([(0, src), (23, expression_target(src, "surprise"))], 24, "ease_in_out")
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    rows = []
    for name, g in (("warp (default: warp + shading + mouth)", None), ("warp+gan", gan)):

        def run(g=g):
            r = FrameRenderer(bgr, src, path, g, appearance=load_appearance())
            return [r.render(i) for i in range(len(path))]

        rows.append((f"transition, 24 frames 512x512 colour, {name}", fps(run, 24, repeats=3)))
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    from backend.engine import DEFAULT_GAN_MODEL
    from backend.models import load_model

    if os.path.exists(DEFAULT_GAN_MODEL):
        model, what = load_model(DEFAULT_GAN_MODEL, "gan", torch.device("cpu")).module.float(), "shipped weights"
    else:
        model, what = ExpressionGAN(GanConfig()).eval(), "random weights"
    rows = []
    for batch in (1, 30, 64, 256):
        x, lm = torch.randn(batch, 1, 64, 64), torch.rand(batch, 68, 2) * 2 - 1

        def run(x=x, lm=lm):
            with torch.inference_mode():
                model(x, lm)

        rows.append((f"GAN 64x64, batch {batch}", fps(run, batch)))
    rng = np.random.default_rng(0)
    for size in (64, 512):
        img = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
        src = rng.uniform(size * 0.25, size * 0.75, (68, 2))
        w = PiecewiseAffineWarper(img, src)
        targets = [src + rng.normal(0, size * 0.01, (68, 2)) for _ in range(10)]
        rows.append(
            (
                f"warp {size}x{size} (68 points + border, per frame)",
                fps(lambda w=w, targets=targets: [w.warp(t) for t in targets], 10),
            )
        )
    rows += transition_rows(model)
    lines = [
        f"### Sequence generation speed, {time.strftime('%Y-%m-%d')}",
        "",
        f"Machine: {machine()}; GAN with {what}.",
        "",
        "| what | frames / s |",
        "|---|---:|",
    ]
    lines += [f"| {name} | {v:.0f} |" for name, v in rows]
    emit(lines, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
