"""The built-in pose library of the procedural characters (runs real Blender: bpy). ``make library``.

    python -m training.build_library [--out backend/assets/library] [--per-expression 3] [--seed 0]

A few poses per expression per character, rendered near-frontal at 256x256, each entry with its shape-key
values, label, projected landmarks and geometric features. Thumbnails are stored as lossless WebP (the
rendered pixels, half the bytes of a PNG). Deterministic for a seed; ~30 s on a 2-core CPU. The result is
an artefact the backend ships and finds (``backend.library.BUILTIN_LIBRARY``); the backend never builds it.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import time

from backend.geometry import FEATURE_NAMES, geometric_features
from backend.library import BUILTIN_LIBRARY
from deepexpr_blender.core import library_format as fmt

from .characters import load_expression_table
from .characters.sampling import image_rng, sample_aus
from .characters.scene import View

log = logging.getLogger(__name__)


def _to_lossless_webp(png: str, out: str) -> None:
    from PIL import Image

    with Image.open(png) as img:
        img.save(out, lossless=True)  # exact pixels; the default effort (higher ones save 1% for 30x the time)
    os.remove(png)


def build_builtin_library(
    out: str = BUILTIN_LIBRARY,
    per_expression: int = 3,
    seed: int = 0,
    size: int = 256,
    characters: list[str] | None = None,
) -> str:
    from deepexpr_blender.toon import AU_SHAPE_KEYS, CHARACTERS, build_character

    from .characters.scene import place_camera, project_landmarks, render, reset_scene, set_expression, set_head_pose

    table = load_expression_table()
    staging = out + ".partial"
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(os.path.join(staging, "thumbs"))
    entries = []
    t0 = time.time()
    for spec in [c for c in CHARACTERS if not characters or c.name in characters]:
        scene = reset_scene(size)
        obj = build_character(spec)
        for expr in table["expressions"]:
            for n in range(per_expression):
                rng = image_rng(seed, "library", spec.name, expr, n)
                values, _ = sample_aus(table, expr, rng, blend_prob=0.0)
                view = View(yaw=rng.uniform(-6, 6), pitch=rng.uniform(-5, 5), distance=5.8)
                set_expression(obj, values)
                set_head_pose(obj, view)
                place_camera(scene, view)
                eid = f"{spec.name}-{expr}-{n:02d}"
                rel = f"thumbs/{eid}.webp"
                png = os.path.join(staging, f"thumbs/{eid}.png")
                render(scene, png)
                _to_lossless_webp(png, os.path.join(staging, rel))
                pts = project_landmarks(scene, obj)
                entries.append(
                    {
                        "id": eid,
                        "label": expr,
                        "thumbnail": rel,
                        # every AU, zeros included: a pose is the whole face
                        "pose": {
                            "type": "shape_keys",
                            "target": spec.name,
                            "values": {au: values.get(au, 0.0) for au in AU_SHAPE_KEYS},
                        },
                        "geometry": [round(float(v), 5) for v in geometric_features(pts)],
                        "landmarks": [[round(float(x), 2), round(float(y), 2)] for x, y in pts],
                    }
                )
    fmt.write(
        staging,
        "DeepExpr built-in characters",
        f"training.build_library seed={seed} per_expression={per_expression}",
        entries,
        list(FEATURE_NAMES),
    )
    shutil.rmtree(out, ignore_errors=True)
    os.replace(staging, out)  # the library appears whole or not at all
    log.info("built %d entries in %s (%.1f s)", len(entries), out, time.time() - t0)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=BUILTIN_LIBRARY)
    ap.add_argument("--per-expression", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--size", type=int, default=256, help="thumbnail side in pixels")
    ap.add_argument("--characters", nargs="*", default=None, help="only these characters (default: all)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    print(build_builtin_library(args.out, args.per_expression, args.seed, args.size, args.characters))


if __name__ == "__main__":
    main()
