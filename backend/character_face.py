"""A face box and landmarks for character images where dlib's detector sees no face (2D characters, renders).

Rig libraries store exact landmarks (projected from the mesh); image-folder libraries (FERG-DB layout, a
user's drawings) have only pixels. For those, in order:

1. dlib's detector and 68-point predictor, as for a human face;
2. else the **character's head** on the image: the foreground (pixels unlike the border's colour, or the alpha
   channel), its largest region; the face box is that head box mapped to the box dlib's detector would give
   (``HeadToFace``: measured on our toon renders, whose landmarks are exact), and dlib's 68-point predictor
   runs inside it (the predictor needs a box, not a detection);
3. a stored ``face_box`` (rig libraries) skips step 2's search.

``docs/evaluation/rigs.md`` measures the landmarks against the exact ones of rigs it never saw.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class HeadToFace:
    """The dlib-style face box as fractions of the head's foreground box (left, top, right, bottom)."""

    left: float = 0.12
    top: float = 0.30
    right: float = 0.88
    bottom: float = 0.98

    def box(self, head: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
        l, t, r, b = head
        w, h = r - l, b - t
        return (
            int(round(l + self.left * w)),
            int(round(t + self.top * h)),
            int(round(l + self.right * w)),
            int(round(t + self.bottom * h)),
        )


def foreground_mask(rgb: np.ndarray, alpha: np.ndarray | None = None, tol: float = 18.0) -> np.ndarray:
    """Pixels that are not the plain background: alpha > 0 when given, else colour farther than ``tol`` (0..255
    per channel, Euclidean) from the median colour of the image's border."""
    if alpha is not None and (alpha < 250).any():
        return alpha > 16
    border = np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]]).astype(np.float64)
    bg = np.median(border, axis=0)
    return np.linalg.norm(rgb.astype(np.float64) - bg, axis=2) > tol


def head_box(rgb: np.ndarray, alpha: np.ndarray | None = None) -> tuple[int, int, int, int] | None:
    """The bounding box of the largest foreground region, or None when there is none worth a face."""
    import cv2

    mask = foreground_mask(rgb, alpha).astype(np.uint8)
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))
    n, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if n < 2:
        return None
    k = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    x, y, w, h, area = stats[k]
    if area < 0.02 * mask.size or w < 16 or h < 16:
        return None
    return int(x), int(y), int(x + w), int(y + h)


def character_points68(
    engine, rgb: np.ndarray, alpha: np.ndarray | None = None, face_box=None, mapping: HeadToFace | None = None
) -> tuple[np.ndarray, str] | None:
    """(68 landmarks, how: "detected" | "face_box" | "head") on a character image, or None when there is no
    face to find."""
    from .errors import DeepExprError

    try:
        face = engine.detector.largest(rgb)
        return engine.predictor.predict(rgb, face.box), "detected"
    except DeepExprError:
        pass
    if face_box is not None:
        return engine.predictor.predict(rgb, tuple(int(round(v)) for v in face_box)), "face_box"
    head = head_box(rgb, alpha)
    if head is None:
        return None
    return engine.predictor.predict(rgb, (mapping or HeadToFace()).box(head)), "head"
