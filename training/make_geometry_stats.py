"""Human statistics of the geometric features, for z-scoring queries in retrieval (``backend.retrieval``).

    python -m training.make_geometry_stats [--data ../shared/data/ckplus_pairs]

Runs the engine over every CK+ frame (neutral and peak, all expressions) and writes the per-feature mean and
standard deviation (18 numbers, no image data) to ``backend/assets/geometry_stats.json``.
"""

from __future__ import annotations

import argparse
import json
import os

import cv2
import numpy as np

from backend.geometry import FEATURE_NAMES, geometric_features
from backend.landmarks import semantic_from_68

from .data import SHARED_DATA, engine, list_ckplus


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.path.join(SHARED_DATA, "ckplus_pairs"))
    ap.add_argument("--out", default=os.path.join("backend", "assets", "geometry_stats.json"))
    args = ap.parse_args()
    from backend.errors import DeepExprError
    from backend.imageio import from_array

    eng = engine()
    feats = []
    items = list_ckplus(args.data)
    neutral = [os.path.join(args.data, "neutral", f) for f in sorted(os.listdir(os.path.join(args.data, "neutral")))]
    for path in [i.path for i in items] + neutral:
        gray = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
        try:
            fa = eng.analyze(from_array(gray))
        except DeepExprError:
            continue
        feats.append(geometric_features(semantic_from_68(fa.points68)))
    f = np.array(feats, dtype=np.float64)
    out = {
        "feature_names": list(FEATURE_NAMES),
        "human": {
            "mean": np.round(f.mean(0), 5).tolist(),
            "std": np.round(f.std(0), 5).tolist(),
            "n": len(f),
            "source": f"engine landmarks on CK+ frames (neutral and peak, all expressions): {len(f)} faces",
        },
    }
    with open(args.out, "w", encoding="utf-8") as fh:
        json.dump(out, fh, indent=1)
    print(json.dumps(out["human"]))


if __name__ == "__main__":
    main()
