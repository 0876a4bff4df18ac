"""Render a labelled data set of the procedural characters in the FERG-DB layout (runs real Blender: bpy).

    python -m training.render_characters --out runs/chars --per-expression 50 [--seed 0]
        [--characters pip mira] [--size 256] [--engine workbench|cycles]

Writes ``<out>/<character>/<character>_<expression>/<character>_<expression>_<n>.png`` plus
``<out>/manifest.jsonl`` (one line per image: character, expression, action-unit values, blend, view, and the
named landmarks projected to pixels). Deterministic for a seed: each image's expression and view come from an
RNG seeded by (seed, character, expression, n). Resumable: images already in the manifest are skipped.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from dataclasses import asdict

from tqdm import tqdm

from backend.landmarks import SEMANTIC_NAMES

from .characters import load_expression_table
from .characters.sampling import image_rng, sample_aus, sample_view

log = logging.getLogger(__name__)

ENGINES = {"workbench": "BLENDER_WORKBENCH", "cycles": "CYCLES", "eevee": "BLENDER_EEVEE"}


def render_dataset(
    out: str,
    per_expression: int,
    seed: int = 0,
    characters: list[str] | None = None,
    size: int = 256,
    engine: str = "workbench",
    expressions: list[str] | None = None,
    progress: bool = True,
) -> dict:
    from deepexpr_blender.toon import CHARACTERS, build_character

    from .characters.scene import place_camera, project_landmarks, render, reset_scene, set_expression, set_head_pose

    table = load_expression_table()
    exprs = expressions or list(table["expressions"])
    specs = [c for c in CHARACTERS if not characters or c.name in characters]
    if characters and len(specs) != len(characters):
        raise SystemExit(f"unknown character in {characters}; known: {[c.name for c in CHARACTERS]}")
    os.makedirs(out, exist_ok=True)
    manifest_path = os.path.join(out, "manifest.jsonl")
    done = set()
    if os.path.exists(manifest_path):
        with open(manifest_path, encoding="utf-8") as f:
            for line in f:
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut by an interrupted run: that image is rendered again
                if os.path.exists(os.path.join(out, row["path"])):
                    done.add(row["path"])
    total = len(specs) * len(exprs) * per_expression
    bar = tqdm(total=total, desc="render", disable=not progress, initial=len(done))
    rendered, t0 = 0, time.time()
    with open(manifest_path, "a", encoding="utf-8") as manifest:
        for spec in specs:
            todo = [
                (e, n)
                for e in exprs
                for n in range(per_expression)
                if f"{spec.name}/{spec.name}_{e}/{spec.name}_{e}_{n:05d}.png" not in done
            ]
            if not todo:
                continue
            scene = reset_scene(size, ENGINES[engine])
            obj = build_character(spec)
            for expr, n in todo:
                rel = f"{spec.name}/{spec.name}_{expr}/{spec.name}_{expr}_{n:05d}.png"
                rng = image_rng(seed, spec.name, expr, n)
                values, info = sample_aus(table, expr, rng)
                view = sample_view(rng)
                set_expression(obj, values)
                set_head_pose(obj, view)
                place_camera(scene, view)
                render(scene, os.path.join(out, rel))
                pts = project_landmarks(scene, obj)
                row = {
                    "path": rel,
                    "character": spec.name,
                    "expression": expr,
                    "aus": values,
                    **info,
                    "view": asdict(view),
                    "landmarks": {
                        k: [round(float(x), 2), round(float(y), 2)] for k, (x, y) in zip(SEMANTIC_NAMES, pts)
                    },
                }
                manifest.write(json.dumps(row) + "\n")
                manifest.flush()
                rendered += 1
                bar.update(1)
    bar.close()
    secs = time.time() - t0
    return {
        "rendered": rendered,
        "skipped": len(done),
        "seconds": round(secs, 2),
        "renders_per_second": round(rendered / secs, 2) if rendered else None,
        "manifest": manifest_path,
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--per-expression", type=int, default=50, help="images per character and expression")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--characters", nargs="*", default=None)
    ap.add_argument("--expressions", nargs="*", default=None)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--engine", choices=sorted(ENGINES), default="workbench")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    stats = render_dataset(
        args.out, args.per_expression, args.seed, args.characters, args.size, args.engine, args.expressions
    )
    print(json.dumps(stats))


if __name__ == "__main__":
    main()
