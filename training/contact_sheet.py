"""Contact sheet of every character x every expression (front view, each AU at the middle of its range).

python -m training.contact_sheet --out docs/characters_contact_sheet.png [--tile 160]
"""

from __future__ import annotations

import argparse
import os
import tempfile

import cv2
import numpy as np


def make_sheet(out: str, tile: int = 160) -> str:
    from deepexpr_blender.toon import CHARACTERS, build_character

    from .characters import load_expression_table
    from .characters.scene import View, place_camera, render, reset_scene, set_expression

    table = load_expression_table()
    aus, exprs = table["action_units"], list(table["expressions"])
    tmp = tempfile.mkdtemp()
    rows = []
    for spec in CHARACTERS:
        scene = reset_scene(256)
        obj = build_character(spec)
        place_camera(scene, View())
        row = []
        for expr in exprs:
            set_expression(
                obj, {aus[a]: (lo + hi) / 2 + (hi - lo) / 4 for a, (lo, hi) in table["expressions"][expr].items()}
            )
            path = os.path.join(tmp, f"{spec.name}_{expr}.png")
            render(scene, path)
            row.append(cv2.resize(cv2.imread(path), (tile, tile), interpolation=cv2.INTER_AREA))
        rows.append(np.hstack(row))
    header = np.full((28, tile * len(exprs), 3), 255, np.uint8)
    for j, e in enumerate(exprs):
        cv2.putText(header, e, (j * tile + 8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (30, 30, 30), 1, cv2.LINE_AA)
    sheet = np.vstack([header, *rows])
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    cv2.imwrite(out, sheet, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default=os.path.join("docs", "characters_contact_sheet.png"))
    ap.add_argument("--tile", type=int, default=160)
    args = ap.parse_args()
    print(make_sheet(args.out, args.tile))


if __name__ == "__main__":
    main()
