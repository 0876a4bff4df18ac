"""The project's own character renders (``training.render_characters``: FERG layout plus ``manifest.jsonl``
with projected landmarks). Aligned from the manifest's landmarks through the same ``backend.align`` as human
faces, not by the detector. Split by render index: the retrieval evaluation trains on n < N and searches the
rest."""

from __future__ import annotations

import hashlib
import json
import os

import cv2
import numpy as np

from .items import DatasetSpec, canonical


def character_crops(root: str, size: int, cache_dir: str = "cache") -> dict:
    """Aligned crops of a rendered character data set, cached.

    Returns {'x', 'y', 'geo', 'character', 'n' (index within its character/expression)}."""
    from backend.align import align_face
    from backend.geometry import geometric_features
    from backend.landmarks import SEMANTIC_NAMES

    rows = [json.loads(line) for line in open(os.path.join(root, "manifest.jsonl"), encoding="utf-8")]
    rows = [r for r in rows if os.path.exists(os.path.join(root, r["path"]))]
    rows.sort(key=lambda r: r["path"])
    key = hashlib.sha1(("\n".join(r["path"] for r in rows) + f"|{size}|v2").encode()).hexdigest()[:16]
    path = os.path.join(cache_dir, f"chars-{size}-{key}.npz")
    if os.path.exists(path):
        with np.load(path) as z:
            return {k: z[k] for k in z.files}
    from tqdm import tqdm

    xs, geos = [], []
    for r in tqdm(rows, desc="align characters"):
        gray = cv2.imread(os.path.join(root, r["path"]), cv2.IMREAD_GRAYSCALE)
        sem = np.array([r["landmarks"][n] for n in SEMANTIC_NAMES], dtype=np.float64)
        xs.append(align_face(gray, sem, size=size).crop)
        geos.append(geometric_features(sem))
    data = {
        "x": np.stack(xs),
        "y": np.array([canonical(r["expression"]) for r in rows], dtype=np.int64),
        "geo": np.stack(geos).astype(np.float32),
        "character": np.array([r["character"] for r in rows]),
        "n": np.array([int(os.path.splitext(r["path"])[0].rsplit("_", 1)[1]) for r in rows]),
    }
    os.makedirs(cache_dir, exist_ok=True)
    np.savez(path, **data)
    return data


def load(root: str, split: str, size: int, cache_dir: str, workers: int, limit: int) -> dict:
    data = character_crops(root, size, cache_dir)
    return {k: v[:limit] for k, v in data.items()} if limit else data


SPEC = DatasetSpec(
    name="characters",
    kind="crops",
    root=os.path.join("cache", "chars"),
    splits=("all",),
    load=load,
    about="the project's character renders (training.render_characters), aligned from their manifest landmarks",
)
