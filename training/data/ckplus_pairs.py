"""CK+ same-identity data for the expression GAN: 64x64 aligned crops and their landmarks, subject folds.

Every frame of ``ckplus_pairs`` (neutral and peak) goes through the engine (landmarks) and the GAN's crop
(``backend.sequence.gan_crop``: a similarity onto the template from the rigid anchors), so training and serving
see the same frames. Triplets (I_u, I_v, g_v) are all ordered pairs of frames of one subject; evaluation uses
the held-out fold's neutral -> peak pairs of the same sequence, as the paper does.
"""

from __future__ import annotations

import csv
import hashlib
import os

import cv2
import numpy as np
import torch

from backend.landmarks import MIRROR68
from backend.models import CLASSES
from backend.sequence import gan_crop, normalize_landmarks

from .crops import engine
from .items import SHARED_DATA, DatasetSpec, canonical, subject_folds

NEUTRAL = len(CLASSES) + 1  # label id for CK+'s neutral frames in the contrastive loss (a class of its own)


def load_pairs_dataset(root: str = os.path.join(SHARED_DATA, "ckplus_pairs"), cache_dir: str = "cache") -> dict:
    """{'x' (N,64,64) uint8 GAN crops, 'lm' (N,68,2) normalized landmarks, 'label' (canonical index; 7 for
    contempt, ``NEUTRAL`` for neutral frames), 'subject', 'sequence', 'expression'}; frames without a face
    are left out. Cached."""
    rows = list(csv.DictReader(open(os.path.join(root, "manifest.csv"), encoding="utf-8")))
    key = hashlib.sha1(("\n".join(r["path"] for r in rows) + "|gan64|v1").encode()).hexdigest()[:16]
    path = os.path.join(cache_dir, f"ckpairs-{key}.npz")
    if os.path.exists(path):
        with np.load(path) as z:
            return {k: z[k] for k in z.files}
    from backend.errors import DeepExprError
    from backend.imageio import from_array

    eng = engine()
    keep, crops, lms = [], [], []
    for r in rows:
        gray = cv2.imread(os.path.join(root, r["path"]), cv2.IMREAD_GRAYSCALE)
        dec = from_array(gray)
        try:
            fa = eng.analyze(dec)
        except DeepExprError:
            continue
        crop = gan_crop(dec.rgb, fa.points68)
        crops.append(crop.image)
        lms.append(normalize_landmarks(crop.points(fa.points68)))
        keep.append(r)
    lab = [
        NEUTRAL
        if r["expression"] == "neutral"
        else (canonical(r["expression"]) if canonical(r["expression"]) is not None else len(CLASSES))
        for r in keep
    ]
    data = {
        "x": np.stack(crops),
        "lm": np.stack(lms).astype(np.float32),
        "label": np.array(lab),
        "subject": np.array([r["subject"] for r in keep]),
        "sequence": np.array([r["sequence"] for r in keep]),
        "expression": np.array([r["expression"] for r in keep]),
    }
    os.makedirs(cache_dir, exist_ok=True)
    np.savez(path, **data)
    return data


def fold_masks(data: dict, fold: int, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
    folds = subject_folds(list(data["subject"]), k)
    f = np.array([folds[s] for s in data["subject"]])
    return f != fold, f == fold


def triplets(data: dict, mask: np.ndarray) -> np.ndarray:
    """All ordered (u, v) index pairs of distinct frames of the same subject within ``mask``."""
    idx = np.nonzero(mask)[0]
    by_subject: dict[str, list[int]] = {}
    for i in idx:
        by_subject.setdefault(data["subject"][i], []).append(i)
    pairs = [(u, v) for ids in by_subject.values() for u in ids for v in ids if u != v]
    return np.array(pairs, dtype=np.int64)


def neutral_to_peak(data: dict, mask: np.ndarray) -> np.ndarray:
    """(neutral, peak) index pairs of the same sequence within ``mask`` (the evaluation pairs)."""
    neutral = {
        (data["subject"][i], data["sequence"][i]): i for i in np.nonzero(mask)[0] if data["expression"][i] == "neutral"
    }
    return np.array(
        [
            (neutral[(data["subject"][i], data["sequence"][i])], i)
            for i in np.nonzero(mask)[0]
            if data["expression"][i] != "neutral" and (data["subject"][i], data["sequence"][i]) in neutral
        ],
        dtype=np.int64,
    )


def flip_landmarks(lm: torch.Tensor) -> torch.Tensor:
    """Mirror normalized 68-point landmarks horizontally (x -> -x, left/right points swapped)."""
    perm = list(MIRROR68)
    out = lm[:, perm].clone()
    out[..., 0] = -out[..., 0]
    return out


def load(root: str, split: str, size: int, cache_dir: str, workers: int, limit: int) -> dict:
    data = load_pairs_dataset(root, cache_dir)
    return {k: v[:limit] for k, v in data.items()} if limit else data


SPEC = DatasetSpec(
    name="ckplus_pairs",
    kind="pairs",
    root=os.path.join(SHARED_DATA, "ckplus_pairs"),
    splits=("all",),
    load=load,
    about="CK+ neutral and peak frames of each sequence, as 64x64 GAN crops with landmarks (subject folds)",
)
