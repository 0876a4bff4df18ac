"""Aligned crops through the engine's own pipeline (``Engine.analyze`` -> ``align_face68``), so training and
serving see identical crops; a cache of them; the torch ``Dataset`` with the usual FER augmentations.

Crops are cached as ``.npz`` under ``cache/`` (ignored by git): the data's terms forbid redistributing even
derived crops.
"""

from __future__ import annotations

import hashlib
import logging
import os
from typing import TYPE_CHECKING

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from backend.calibration import aligned_landmarks
from backend.models import normalize_crops

from .items import Item

if TYPE_CHECKING:
    from backend.engine import Engine

log = logging.getLogger(__name__)

# Where dlib's detector usually puts the face in a tight 48x48 data set crop (median over FER2013 detections,
# as fractions of the side); used when HOG finds no face in a crop that is known to hold one.
TIGHT_CROP_BOX = (0.06, 0.15, 0.91, 0.93)

_engine: Engine | None = None  # this process's alignment engine: see engine()


def init_engine() -> None:
    """Build this process's alignment engine (detector and landmarks, no expression network); also the
    initializer of the crop cache's worker processes."""
    global _engine
    from backend.engine import Engine, EngineConfig

    cv2.setNumThreads(1)
    _engine = Engine(EngineConfig(device="cpu", expression_model=None))


def engine() -> Engine:
    """This process's alignment engine, built on first use."""
    if _engine is None:
        init_engine()
    return _engine  # type: ignore[return-value]


def to_input(crops: np.ndarray) -> torch.Tensor:
    """uint8 crops (N,S,S) -> the networks' input (N,1,S,S): ``backend.models.normalize_crops``."""
    return normalize_crops(crops)


def align_array(
    gray: np.ndarray, size: int, tight_crop: bool = True
) -> tuple[np.ndarray, bool, np.ndarray, np.ndarray]:
    """Engine alignment of one image array; returns (crop, detected, geometric features, the 68 landmarks in
    the crop's frame as fractions of its side). For tight data set crops, a face the detector misses is placed
    with TIGHT_CROP_BOX (detected=False)."""
    from backend.errors import DeepExprError
    from backend.imageio import from_array

    eng = engine()
    dec = from_array(gray)
    try:
        fa = eng.analyze(dec)
        detected = True
    except DeepExprError:
        if not tight_crop:
            raise
        h, w = gray.shape[:2]
        box = [TIGHT_CROP_BOX[0] * w, TIGHT_CROP_BOX[1] * h, TIGHT_CROP_BOX[2] * w, TIGHT_CROP_BOX[3] * h]
        fa = eng.analyze(dec, box=box)
        detected = False
    al = fa.aligned(size)
    return al.crop, detected, eng.geometry(fa), aligned_landmarks(fa.points68, al.matrix, size)


def _align_path(args: tuple[str, int]) -> tuple[np.ndarray, bool, np.ndarray, np.ndarray]:
    path, size = args
    gray = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
    if gray is None:
        raise ValueError(f"cannot read {path}")
    return align_array(gray, size)


def crop_cache(items: list[Item], size: int, cache_dir: str = "cache", workers: int = 2, tag: str = "") -> dict:
    """Aligned crops for ``items`` (cached by the list's paths and size):
    {'x': (N,S,S) uint8, 'y', 'detected', 'geo' (N, F) geometric features, 'lm' (N, 68, 2) aligned landmarks
    (fractions of the crop side), 'subject'}."""
    # Keyed by the images' last three path parts (class/split/file), so moving the data keeps the cache.
    names = "\n".join("/".join(os.path.normpath(i.path).split(os.sep)[-3:]) for i in items)
    # v3: the aligned landmarks ("lm") were added; a v2 cache lacks them and is rebuilt.
    key = hashlib.sha1((names + f"|{size}|v3").encode()).hexdigest()[:16]
    path = os.path.join(cache_dir, f"crops-{tag}-{size}-{key}.npz")
    if os.path.exists(path):
        with np.load(path) as z:
            return {k: z[k] for k in z.files}
    from multiprocessing import get_context

    from tqdm import tqdm

    os.makedirs(cache_dir, exist_ok=True)
    jobs = [(i.path, size) for i in items]
    if workers > 1:
        with get_context("spawn").Pool(workers, initializer=init_engine) as pool:
            out = list(tqdm(pool.imap(_align_path, jobs, chunksize=64), total=len(jobs), desc=f"align {tag}"))
    else:
        out = [_align_path(j) for j in tqdm(jobs, desc=f"align {tag}")]
    data = {
        "x": np.stack([o[0] for o in out]).astype(np.uint8),
        "y": np.array([i.label for i in items], dtype=np.int64),
        "detected": np.array([o[1] for o in out], dtype=bool),
        "geo": np.stack([o[2] for o in out]).astype(np.float32),
        "lm": np.stack([o[3] for o in out]).astype(np.float32),
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


def split_tag(root: str, split: str) -> str:
    """The cache tag of a data set split: the root's folder name, then the split unless it is "all"."""
    base = os.path.basename(os.path.normpath(root))
    return base if split == "all" else f"{base}-{split}"


# ------------------------------------------------------------------------------------------ torch dataset
class CropDataset(Dataset):
    """Aligned grayscale crops with the augmentations common in FER work: horizontal flip, small random
    similarity (±10°, ±10% scale, ±8% shift), brightness/contrast jitter and random erasing. ``augment``:
    False, True / "basic" (those), or "strong" (``augment_strong``: those plus what query photos bring)."""

    def __init__(self, x: np.ndarray, y: np.ndarray, augment: bool | str, mean: float = 0.5, std: float = 0.5):
        if augment not in (False, True, "basic", "strong", "none"):
            raise ValueError(f"augment must be basic, strong or none, not {augment!r}")
        self.x, self.y, self.mean, self.std = x, y, mean, std
        self.augment = {True: augment_crop, "basic": augment_crop, "strong": augment_strong}.get(augment)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        img = self.x[i].astype(np.float32) / 255.0
        if self.augment is not None:
            img = self.augment(img, np.random)
        return normalize_crops(img, self.mean, self.std), int(self.y[i])


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


def augment_strong(img: np.ndarray, rng) -> np.ndarray:
    """``augment_crop`` with a wider alignment jitter (±15°, ±15% scale, ±10% shift), then what a query photo
    brings: gamma and a lighting gradient across the face, blur or a low-resolution round trip, sensor noise,
    and an occluding bar (hand, glasses frame) besides random erasing."""
    s = img.shape[0]
    if rng.rand() < 0.5:
        img = img[:, ::-1]
    ang, sc = rng.uniform(-15, 15), rng.uniform(0.85, 1.15)
    m = cv2.getRotationMatrix2D((s / 2, s / 2), ang, sc)
    m[:, 2] += rng.uniform(-0.1, 0.1, size=2) * s
    img = cv2.warpAffine(np.ascontiguousarray(img), m, (s, s), borderMode=cv2.BORDER_REFLECT)
    img = np.clip(img, 0, 1) ** np.exp(rng.uniform(-0.4, 0.4))
    if rng.rand() < 0.4:  # light from one side
        t = rng.uniform(0, 2 * np.pi)
        ramp = (np.cos(t) * np.linspace(-1, 1, s)[None] + np.sin(t) * np.linspace(-1, 1, s)[:, None]) / 2
        img = img * (1 + rng.uniform(0.1, 0.5) * ramp)
    img = np.clip((img - 0.5) * rng.uniform(0.7, 1.3) + 0.5 + rng.uniform(-0.15, 0.15), 0, 1).astype(np.float32)
    r = rng.rand()
    if r < 0.2:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.5, 1.2))
    elif r < 0.35:
        k = int(rng.randint(16, 33))
        img = cv2.resize(cv2.resize(img, (k, k), interpolation=cv2.INTER_AREA), (s, s), interpolation=cv2.INTER_LINEAR)
    if rng.rand() < 0.3:
        img = img + rng.normal(0, rng.uniform(0.01, 0.05), img.shape).astype(np.float32)
    img = img.copy()
    if rng.rand() < 0.4:
        eh, ew = (rng.uniform(0.1, 0.35, size=2) * s).astype(int)
        y0, x0 = rng.randint(0, s - eh), rng.randint(0, s - ew)
        img[y0 : y0 + eh, x0 : x0 + ew] = rng.rand()
    elif rng.rand() < 0.3:  # a horizontal bar over the eyes or the mouth
        h = int(rng.uniform(0.06, 0.14) * s)
        y0 = int(rng.choice([0.3, 0.7]) * s + rng.uniform(-0.05, 0.05) * s)
        img[max(0, y0 - h // 2) : y0 + h // 2] = rng.rand()
    return np.clip(img, 0, 1).astype(np.float32)
