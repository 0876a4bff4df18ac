"""Data sets users have, mapped onto the 7 canonical labels, and aligned-crop caches built by the engine.

Layouts: class folders (FER2013 as shipped in ../shared/data/fer2013), the FER2013 Kaggle CSV, CK+ with its
manifest (subject-disjoint folds), FERG-DB (``<character>/<character>_<expression>/*.png``) and the project's
own character renders (FERG layout + manifest with projected landmarks).

Every face goes through the engine's own pipeline (``Engine.analyze`` -> ``align_face68``), so training
and serving see identical crops. Crops are cached as ``.npz`` under ``cache/`` (ignored by git): the data's
terms forbid redistributing even derived crops.
"""

from __future__ import annotations

import csv
import glob
import hashlib
import logging
import os
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from backend.models import CLASSES, normalize_crops
from deepexpr_blender.core.vocabulary import canonical_label, ferg_layout

log = logging.getLogger(__name__)

SHARED_DATA = os.path.normpath(
    os.environ.get("DEEPEXPR_SHARED_DATA", os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data"))
)

KAGGLE_FER_ORDER = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
# Where dlib's detector usually puts the face in a tight 48x48 data set crop (median over FER2013 detections,
# as fractions of the side); used when HOG finds no face in a crop that is known to hold one.
TIGHT_CROP_BOX = (0.06, 0.15, 0.91, 0.93)


def canonical(name: str) -> int | None:
    """A data set's class name -> canonical class index; None for names with no canonical class (contempt)."""
    c = canonical_label(name)
    return None if c is None else CLASSES.index(c)


@dataclass
class Item:
    path: str
    label: int
    subject: str = ""


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


def list_ckplus(root: str) -> list[Item]:
    """CK+ with its manifest; contempt is dropped (no canonical class)."""
    items = []
    with open(os.path.join(root, "manifest.csv"), newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            lab = canonical(row["expression"])
            if lab is not None:
                items.append(Item(os.path.join(root, row["path"]), lab, row["subject"]))
    return items


def subject_folds(subjects: list[str], k: int = 10) -> dict[str, int]:
    """Subjects -> fold by sorted id, round robin: a subject never appears in two folds."""
    return {s: i % k for i, s in enumerate(sorted(set(subjects)))}


def list_ferg(root: str) -> list[Item]:
    """FERG-DB layout: ``<character>/<character>_<expression>/*.png``; the character is the 'subject'."""
    items = []
    for char, expr, path in ferg_layout(root, exts=(".png",)):
        lab = canonical(expr)
        if lab is not None:
            items.append(Item(path, lab, char))
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


# ------------------------------------------------------------------------------------------ crop cache
_ENGINE = None


def _init_worker() -> None:
    global _ENGINE
    from backend.engine import Engine, EngineConfig

    cv2.setNumThreads(1)
    _ENGINE = Engine(EngineConfig(device="cpu", expression_model=None))


def align_array(gray: np.ndarray, size: int, tight_crop: bool = True) -> tuple[np.ndarray, bool, np.ndarray]:
    """Engine alignment of one image array; returns (crop, detected, geometric features). For tight data set
    crops, a face the detector misses is placed with TIGHT_CROP_BOX (detected=False)."""
    from backend.errors import DeepExprError
    from backend.imageio import from_array

    dec = from_array(gray)
    try:
        fa = _ENGINE.analyze(dec)
        detected = True
    except DeepExprError:
        if not tight_crop:
            raise
        h, w = gray.shape[:2]
        box = [TIGHT_CROP_BOX[0] * w, TIGHT_CROP_BOX[1] * h, TIGHT_CROP_BOX[2] * w, TIGHT_CROP_BOX[3] * h]
        fa = _ENGINE.analyze(dec, box=box)
        detected = False
    return fa.aligned(size).crop, detected, _ENGINE.geometry(fa)


def _align_path(args: tuple[str, int]) -> tuple[np.ndarray, bool, np.ndarray]:
    path, size = args
    gray = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
    if gray is None:
        raise ValueError(f"cannot read {path}")
    return align_array(gray, size)


def crop_cache(items: list[Item], size: int, cache_dir: str = "cache", workers: int = 2, tag: str = "") -> dict:
    """Aligned crops for ``items`` (cached by the list's paths and size):
    {'x': (N,S,S) uint8, 'y', 'detected', 'geo' (N, F) geometric features, 'subject'}."""
    # Keyed by the images' last three path parts (class/split/file), so moving the data keeps the cache.
    names = "\n".join("/".join(os.path.normpath(i.path).split(os.sep)[-3:]) for i in items)
    key = hashlib.sha1((names + f"|{size}|v2").encode()).hexdigest()[:16]
    path = os.path.join(cache_dir, f"crops-{tag}-{size}-{key}.npz")
    if os.path.exists(path):
        with np.load(path) as z:
            return {k: z[k] for k in z.files}
    from multiprocessing import get_context

    from tqdm import tqdm

    os.makedirs(cache_dir, exist_ok=True)
    jobs = [(i.path, size) for i in items]
    if workers > 1:
        with get_context("spawn").Pool(workers, initializer=_init_worker) as pool:
            out = list(tqdm(pool.imap(_align_path, jobs, chunksize=64), total=len(jobs), desc=f"align {tag}"))
    else:
        _init_worker()
        out = [_align_path(j) for j in tqdm(jobs, desc=f"align {tag}")]
    data = {
        "x": np.stack([o[0] for o in out]).astype(np.uint8),
        "y": np.array([i.label for i in items], dtype=np.int64),
        "detected": np.array([o[1] for o in out], dtype=bool),
        "geo": np.stack([o[2] for o in out]).astype(np.float32),
        "subject": np.array([i.subject for i in items]),
    }
    np.savez(path, **data)
    log.info(
        "cached %d crops (%.1f%% detected, rest placed by the tight-crop box) in %s",
        len(items),
        100 * data["detected"].mean(),
        path,
    )
    return data


# ------------------------------------------------------------------------------------------ torch dataset
class CropDataset(Dataset):
    """Aligned grayscale crops with the augmentations common in FER work: horizontal flip, small random
    similarity (±10°, ±10% scale, ±8% shift), brightness/contrast jitter and random erasing."""

    def __init__(self, x: np.ndarray, y: np.ndarray, augment: bool, mean: float = 0.5, std: float = 0.5):
        self.x, self.y, self.augment, self.mean, self.std = x, y, augment, mean, std

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        img = self.x[i].astype(np.float32) / 255.0
        if self.augment:
            img = augment_crop(img, np.random)
        t = normalize_crops(img, self.mean, self.std)
        return t, int(self.y[i])


def augment_crop(img: np.ndarray, rng) -> np.ndarray:
    s = img.shape[0]
    if rng.rand() < 0.5:
        img = img[:, ::-1]
    ang, sc = rng.uniform(-10, 10), rng.uniform(0.9, 1.1)
    m = cv2.getRotationMatrix2D((s / 2, s / 2), ang, sc)
    m[:, 2] += rng.uniform(-0.08, 0.08, size=2) * s
    img = cv2.warpAffine(np.ascontiguousarray(img), m, (s, s), borderMode=cv2.BORDER_REFLECT)
    img = np.clip((img - 0.5) * rng.uniform(0.7, 1.3) + 0.5 + rng.uniform(-0.15, 0.15), 0, 1)
    if rng.rand() < 0.5:
        eh, ew = (rng.uniform(0.1, 0.35, size=2) * s).astype(int)
        y0, x0 = rng.randint(0, s - eh), rng.randint(0, s - ew)
        img = img.copy()
        img[y0 : y0 + eh, x0 : x0 + ew] = rng.rand()
    return img.astype(np.float32)


# ------------------------------------------------------------------------------------------ character renders
def character_crops(root: str, size: int, cache_dir: str = "cache") -> dict:
    """Aligned crops of a rendered character data set (``training.render_characters``): alignment from the
    manifest's projected landmarks, through the same ``backend.align`` as human faces. Cached.

    Returns {'x', 'y', 'geo', 'character', 'n' (index within its character/expression)}."""
    import json

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
