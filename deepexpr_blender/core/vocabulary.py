"""One home for the words both processes use: expression labels, their synonyms, the FERG-DB folder
layout, and the retrieval weights' defaults. Plain Python (stdlib only)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

# The canonical label set (FERG-DB / DeepExpr), in the networks' output order.
LABELS: tuple[str, ...] = ("anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise")

# Other names of the canonical labels (data-set folder names, rig key names). ``None`` means "a known
# expression with no canonical class": CK+'s contempt is left out of 7-class metrics.
SYNONYMS: dict[str, str | None] = {
    "angry": "anger",
    "happy": "joy",
    "happiness": "joy",
    "sad": "sadness",
    "surprised": "surprise",
    "disgusted": "disgust",
    "afraid": "fear",
    "scared": "fear",
    "contempt": None,
}

# Retrieval: phi = alpha * JS(features) + beta * geometric distance (DeepExpr) + gamma * JS(the face's class
# probabilities, the entry's declared expression) + delta * neutral-relative geometric distance (needs the
# actor's neutral). The defaults of every caller, chosen on our toons' libraries (leave one toon out, FER2013
# val + half of the CK+ subjects; delta and calibration on CK+ pairs of that half): docs/evaluation/rig_scoring.md.
DEFAULT_ALPHA = 1.0
DEFAULT_BETA = 0.2
DEFAULT_GAMMA = 1.0
DEFAULT_DELTA = 0.4
DEFAULT_CALIBRATION = 0.0
DEFAULT_TOP_K = 5

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def canonical_label(name: str) -> str | None:
    """An exact label or synonym (any case) -> canonical label; anything else (and contempt) -> None."""
    word = name.strip().lower()
    if word in LABELS:
        return word
    return SYNONYMS.get(word)


def label_from_name(name: str) -> str | None:
    """The label a pose or folder name starts with: 'Joy_2' -> 'joy', 'angry face' -> 'anger'; else None."""
    word = re.split(r"[^a-z]+", name.lower().strip())[0] if name else ""
    return canonical_label(word) if word else None


def ferg_layout(root: str, exts: tuple[str, ...] = IMAGE_EXTS) -> Iterator[tuple[str, str, str]]:
    """Walk the FERG-DB layout ``<character>/<character>_<expression>/<image>``, in sorted order.

    Yields ``(character, expression folder word, image path)``; the expression word is the folder name
    without the ``<character>_`` prefix, not yet mapped to a label (see ``label_from_name``)."""
    for char in sorted(os.listdir(root)):
        cdir = os.path.join(root, char)
        if not os.path.isdir(cdir):
            continue
        for sub in sorted(os.listdir(cdir)):
            sdir = os.path.join(cdir, sub)
            if not os.path.isdir(sdir):
                continue
            expr = sub[len(char) + 1 :] if sub.startswith(char + "_") else sub
            for fname in sorted(os.listdir(sdir)):
                if fname.lower().endswith(exts):
                    yield char, expr, os.path.join(sdir, fname)
