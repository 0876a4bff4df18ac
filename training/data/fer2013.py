"""FER2013 as class folders (``<root>/<split>/<class>/*.png``, as in ../shared/data/fer2013), and Kaggle's CSV.

Any data set in the same class-folder layout (train/val/test, one folder per class, class names mapped onto the
seven canonical labels) loads with ``--dataset fer2013 --data-root PATH``.
"""

from __future__ import annotations

import csv
import glob
import os

import numpy as np

from .crops import crop_cache, split_tag
from .items import SHARED_DATA, SPLITS, DatasetSpec, Item, canonical

KAGGLE_FER_ORDER = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


def list_class_folders(root: str) -> list[Item]:
    items = []
    for d in sorted(os.listdir(root)):
        lab = canonical(d) if os.path.isdir(os.path.join(root, d)) else None
        if lab is None:
            continue
        items += [
            Item(p, lab)
            for p in sorted(glob.glob(os.path.join(root, d, "*.png")) + glob.glob(os.path.join(root, d, "*.jpg")))
        ]
    return items


def read_fer_csv(path: str, usage: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Kaggle's fer2013.csv (emotion,pixels,Usage) -> (N,48,48) uint8 images and canonical labels."""
    imgs, labels = [], []
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if usage and row.get("Usage") != usage:
                continue
            lab = canonical(KAGGLE_FER_ORDER[int(row["emotion"])])
            imgs.append(np.array(row["pixels"].split(), dtype=np.uint8).reshape(48, 48))
            labels.append(lab)
    return np.stack(imgs), np.array(labels, dtype=np.int64)


def load(root: str, split: str, size: int, cache_dir: str, workers: int, limit: int) -> dict:
    splits = SPLITS if split == "all" else (split,)
    items = [i for s in splits for i in list_class_folders(os.path.join(root, s))]
    if limit:
        items = items[:limit]
    return crop_cache(items, size, cache_dir, workers=workers, tag=split_tag(root, split))


SPEC = DatasetSpec(
    name="fer2013",
    kind="crops",
    root=os.path.join(SHARED_DATA, "fer2013"),
    splits=(*SPLITS, "all"),
    load=load,
    about="class folders with train/val/test splits (FER2013 as shipped in ../shared/data/fer2013)",
)
