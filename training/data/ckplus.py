"""CK+ peak frames with their manifest (``manifest.csv``: path, subject, expression), as in
../shared/data/ckplus48. Contempt has no canonical class and is dropped. CK+ has no splits: the evaluation uses
subject folds (``subject_folds``); training splits by subject too (``subject_split``)."""

from __future__ import annotations

import csv
import os

from .crops import crop_cache, split_tag
from .items import SHARED_DATA, SPLITS, DatasetSpec, Item, canonical, subject_split


def list_ckplus(root: str) -> list[Item]:
    """CK+ with its manifest; contempt is dropped (no canonical class)."""
    items = []
    with open(os.path.join(root, "manifest.csv"), newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            lab = canonical(row["expression"])
            if lab is not None:
                items.append(Item(os.path.join(root, row["path"]), lab, row["subject"]))
    return items


def load(root: str, split: str, size: int, cache_dir: str, workers: int, limit: int) -> dict:
    items = subject_split(list_ckplus(root), split)
    if limit:
        items = items[:limit]
    return crop_cache(items, size, cache_dir, workers=workers, tag=split_tag(root, split))


SPEC = DatasetSpec(
    name="ckplus",
    kind="crops",
    root=os.path.join(SHARED_DATA, "ckplus48"),
    splits=(*SPLITS, "all"),
    load=load,
    about="CK+ peak frames with manifest.csv (subject-disjoint splits by fold; contempt dropped)",
)
