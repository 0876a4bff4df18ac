"""Data sets chosen by name (the idea of pix2pix's ``data/__init__.py: find_dataset_using_name``, as a table).

Every data set is one module in this package that ends with ``SPEC = DatasetSpec(...)`` (its name, kind,
default root, splits and ``load`` function) and is named once in ``DATASETS`` below. Adding a data-set loader is
that one file plus its line in ``DATASETS``; ``--dataset NAME`` then finds it. Every face goes through the
engine's own pipeline (``crops``), so training and serving see identical crops.

    crops    (N,S,S) uint8 aligned crops 'x', canonical labels 'y' (+ 'geo', 'subject', ... per data set)
    pairs    64x64 GAN crops 'x' with landmarks 'lm' and 'label', 'subject', 'sequence', 'expression'
"""

from __future__ import annotations

from . import characters, ckplus, ckplus_pairs, fer2013, ferg
from .characters import character_crops
from .ckplus import list_ckplus
from .crops import CropDataset, align_array, augment_crop, augment_strong, crop_cache, engine, init_engine, to_input
from .fer2013 import list_class_folders, read_fer_csv
from .ferg import list_ferg
from .items import SHARED_DATA, SPLITS, DatasetSpec, Item, canonical, subject_folds, subject_split

DATASETS: dict[str, DatasetSpec] = {
    s.name: s for s in (fer2013.SPEC, ckplus.SPEC, ckplus_pairs.SPEC, ferg.SPEC, characters.SPEC)
}


def find_dataset(name: str, kind: str | None = None) -> DatasetSpec:
    """The data set called ``name``; a clear error naming the known ones (of ``kind``, if given)."""
    known = sorted(n for n, s in DATASETS.items() if kind is None or s.kind == kind)
    if name not in known:
        what = f"{kind} data set" if kind else "data set"
        raise ValueError(f"unknown {what} {name!r}; known: {', '.join(known)}")
    return DATASETS[name]


def load_dataset(
    name: str,
    split: str = "all",
    root: str = "",
    size: int = 48,
    cache_dir: str = "cache",
    workers: int = 1,
    limit: int = 0,
) -> dict:
    """Arrays of one split of the data set ``name`` (``root``: its default location when empty)."""
    spec = find_dataset(name)
    if split not in spec.splits:
        raise ValueError(f"data set {name!r} has no split {split!r}; it has: {', '.join(spec.splits)}")
    return spec.load(root or spec.root, split, size, cache_dir, workers, limit)


__all__ = [
    "DATASETS",
    "SHARED_DATA",
    "SPLITS",
    "CropDataset",
    "DatasetSpec",
    "Item",
    "align_array",
    "augment_crop",
    "augment_strong",
    "canonical",
    "character_crops",
    "crop_cache",
    "engine",
    "find_dataset",
    "init_engine",
    "list_ckplus",
    "list_class_folders",
    "list_ferg",
    "load_dataset",
    "read_fer_csv",
    "subject_folds",
    "subject_split",
    "to_input",
]
