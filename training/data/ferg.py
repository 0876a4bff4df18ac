"""FERG-DB layout (``<character>/<character>_<expression>/*.png``); the character is the 'subject', so the
splits (``subject_split``) never share a character."""

from __future__ import annotations

import os

from deepexpr_blender.core.vocabulary import ferg_layout

from .crops import crop_cache, split_tag
from .items import SHARED_DATA, SPLITS, DatasetSpec, Item, canonical, subject_split


def list_ferg(root: str) -> list[Item]:
    """FERG-DB layout: ``<character>/<character>_<expression>/*.png``; the character is the 'subject'."""
    items = []
    for char, expr, path in ferg_layout(root, exts=(".png",)):
        lab = canonical(expr)
        if lab is not None:
            items.append(Item(path, lab, char))
    return items


def load(root: str, split: str, size: int, cache_dir: str, workers: int, limit: int) -> dict:
    items = subject_split(list_ferg(root), split)
    if limit:
        items = items[:limit]
    return crop_cache(items, size, cache_dir, workers=workers, tag=split_tag(root, split))


SPEC = DatasetSpec(
    name="ferg",
    kind="crops",
    root=os.path.join(SHARED_DATA, "ferg"),
    splits=(*SPLITS, "all"),
    load=load,
    about="FERG-DB layout <character>/<character>_<expression>/*.png (character-disjoint splits)",
)
