"""Mean landmark displacement of each expression from neutral, learned from CK+ same-subject pairs.

    python -m training.make_expression_deltas [--data ../shared/data/ckplus_pairs]

For every peak frame whose own sequence's neutral frame is in ``ckplus_pairs``, both are landmarked by the
engine and brought into template space (``backend.align``, from the rigid anchors); the displacement
peak - neutral is averaged per expression. Identity cancels in the difference, so a delta can be added to any
face's landmarks ("a named expression placed on the source face's geometry"). Writes 7 x 68 x 2 averaged
numbers (no image data) to ``backend/assets/expression_deltas.json``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
from collections import defaultdict

import cv2
import numpy as np

from backend.align import alignment_matrix
from backend.landmarks import semantic_from_68
from backend.models import CLASSES

from .data import SHARED_DATA, canonical, engine


def to_template(points68: np.ndarray) -> np.ndarray:
    """68 points in unit template coordinates (similarity from the anchors)."""
    m = alignment_matrix(semantic_from_68(points68), 1)
    return points68 @ m[:, :2].T + m[:, 2]


def landmarks_of(path: str):
    from backend.errors import DeepExprError
    from backend.imageio import from_array

    gray = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
    try:
        fa = engine().analyze(from_array(gray))
        return fa.to_original(fa.points68)
    except DeepExprError:
        return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.path.join(SHARED_DATA, "ckplus_pairs"))
    ap.add_argument("--out", default=os.path.join("backend", "assets", "expression_deltas.json"))
    args = ap.parse_args()
    rows = list(csv.DictReader(open(os.path.join(args.data, "manifest.csv"), encoding="utf-8")))
    neutral = {(r["subject"], r["sequence"]): r for r in rows if r["expression"] == "neutral"}
    deltas = defaultdict(list)
    for r in rows:
        lab = canonical(r["expression"])
        key = (r["subject"], r["sequence"])
        if r["expression"] == "neutral" or lab is None or key not in neutral:
            continue
        a = landmarks_of(os.path.join(args.data, neutral[key]["path"]))
        b = landmarks_of(os.path.join(args.data, r["path"]))
        if a is None or b is None:
            continue
        deltas[CLASSES[lab]].append(to_template(b) - to_template(a))
    out = {
        "description": __doc__.split("\n")[1],
        "units": "template coordinates (unit crop, see backend.align)",
        "counts": {k: len(v) for k, v in deltas.items()},
        "deltas": {k: np.round(np.mean(v, axis=0), 5).tolist() for k, v in deltas.items()},
    }
    out["deltas"]["neutral"] = np.zeros((68, 2)).tolist()
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(out, f)
    print(out["counts"])


if __name__ == "__main__":
    main()
