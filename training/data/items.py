"""What a data-set loader works with: items (image path, canonical label, subject), the label mapping, subject
splits, and ``DatasetSpec``, the one entry each loader adds to the registry (``training.data.DATASETS``)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Protocol

from backend.models import CLASSES
from deepexpr_blender.core.vocabulary import canonical_label

SHARED_DATA = os.path.normpath(
    os.environ.get("DEEPEXPR_SHARED_DATA", os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data"))
)

SPLITS = ("train", "val", "test")  # the splits a training script asks for; "all" is every item


def canonical(name: str) -> int | None:
    """A data set's class name -> canonical class index; None for names with no canonical class (contempt)."""
    c = canonical_label(name)
    return None if c is None else CLASSES.index(c)


@dataclass
class Item:
    path: str
    label: int
    subject: str = ""


def subject_folds(subjects: list[str], k: int = 10) -> dict[str, int]:
    """Subjects -> fold by sorted id, round robin: a subject never appears in two folds."""
    return {s: i % k for i, s in enumerate(sorted(set(subjects)))}


def subject_split(items: list[Item], split: str, k: int = 10) -> list[Item]:
    """``split`` of a data set that ships without one, by subject folds (``subject_folds``): test = fold 0,
    val = fold 1, train = the other folds; "all" = every item. No subject is in two splits."""
    if split == "all":
        return items
    folds = subject_folds([i.subject for i in items], k)
    keep = {"test": lambda f: f == 0, "val": lambda f: f == 1, "train": lambda f: f > 1}[split]
    return [i for i in items if keep(folds[i.subject])]


class Loader(Protocol):
    def __call__(self, root: str, split: str, size: int, cache_dir: str, workers: int, limit: int) -> dict:
        """Arrays of one split (see ``DatasetSpec.kind``); ``limit`` > 0 keeps only the first ``limit`` items."""
        ...


@dataclass(frozen=True)
class DatasetSpec:
    """One data set, chosen by name (``--dataset NAME``; ``training.data.find_dataset``)."""

    name: str  # the name on the command line
    kind: str  # "crops": {'x' (N,S,S) uint8 aligned crops, 'y' canonical labels, ...}; "pairs": see ckplus_pairs
    root: str  # where it is when no --data-root is given
    splits: tuple[str, ...]  # splits ``load`` accepts
    load: Loader
    about: str  # one line for --help and the docs
