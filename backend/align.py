"""Face registration: a similarity transform of the landmarks onto a mean frontal template, then a crop.

This is the one alignment code path for serving and training (the papers' registration step). The template
(``assets/template68.json``) is the Procrustes mean of dlib landmarks on CK+ neutral frames, made by
``python -m training.make_template``; it holds only averaged geometry (136 numbers), no image data.
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass

import cv2
import numpy as np

from .landmarks import ANCHOR_NAMES, SEMANTIC_NAMES, semantic_from_68

TEMPLATE_PATH = os.path.join(os.path.dirname(__file__), "assets", "template68.json")


@functools.lru_cache(maxsize=1)
def template68() -> np.ndarray:
    """(68, 2) mean frontal landmarks in unit crop coordinates ([0, 1]^2, face bounding box with margin)."""
    with open(TEMPLATE_PATH, encoding="utf-8") as f:
        data = json.load(f)
    pts = np.asarray(data["points"], dtype=np.float64)
    assert pts.shape == (68, 2), pts.shape
    return pts


@functools.lru_cache(maxsize=1)
def template_semantic() -> np.ndarray:
    return semantic_from_68(template68())


def umeyama_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation) mapping src to dst: a 2x3 matrix."""
    from skimage.transform import SimilarityTransform

    tf = SimilarityTransform()
    if not tf.estimate(np.asarray(src, np.float64), np.asarray(dst, np.float64)):
        raise ValueError("degenerate landmarks: cannot estimate a similarity transform")
    return tf.params[:2].copy()


@dataclass
class Aligned:
    crop: np.ndarray  # size x size (x3 if colour) uint8
    matrix: np.ndarray  # 2x3, image pixels -> crop pixels
    semantic: np.ndarray  # named points in crop pixels


def alignment_matrix(semantic: np.ndarray, size: int) -> np.ndarray:
    """2x3 matrix taking image pixels to a ``size`` crop, estimated from the anchor points only."""
    idx = [SEMANTIC_NAMES.index(n) for n in ANCHOR_NAMES]
    return umeyama_similarity(np.asarray(semantic)[idx], template_semantic()[idx] * size)


def align_face(image: np.ndarray, semantic: np.ndarray, size: int = 64, gray: bool = True) -> Aligned:
    """Warp ``image`` (HxW or HxWx3 uint8) so that its named points (SEMANTIC_NAMES order) sit on the template.

    Works the same for a human face (points from dlib) and a character render (points projected from the mesh).
    """
    m = alignment_matrix(semantic, size)
    img = image
    if gray and img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    crop = cv2.warpAffine(img, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    pts = np.asarray(semantic) @ m[:, :2].T + m[:, 2]
    return Aligned(crop=crop, matrix=m, semantic=pts)


def align_face68(image: np.ndarray, points68: np.ndarray, size: int = 64, gray: bool = True) -> Aligned:
    return align_face(image, semantic_from_68(points68), size=size, gray=gray)
