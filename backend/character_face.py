"""A face box and landmarks for character images where dlib's detector sees no face (2D characters, renders).

Rig libraries store exact landmarks (projected from the mesh); image-folder libraries (FERG-DB layout, a
user's drawings) have only pixels. Measured on our toon renders, whose landmarks are exact (76 face-on renders
of the four toons at 320 px, the head and shoulders in frame; NME = mean point error / inter-ocular distance):
dlib's detector "finds" a face on 47 of them, but 36 of those are an eye or a cheek (a box 13-25 % of the head's
width, NME 0.71-0.84); the 11 plausible ones (77 % of the head's width, centred) give NME 0.13-0.23; dlib's
68-point predictor run inside a box taken from the head gives at best 0.30, the mean human template placed in
that box 0.21. So, in order:

1. dlib's detector, kept only when its face is plausible for the character's head (at least
   ``MIN_FACE_SHARE`` of the foreground's width on the rows it spans, centred on it), then dlib's 68-point
   predictor: ``detected``;
2. else the **character's head** on the image: the foreground (pixels unlike the border's colour; a
   transparent background is composited on grey by the decoder), its largest region; the face box is a fixed
   part of that head box (``HeadToFace``, chosen on the toon renders above) and the mean human landmark
   template (``backend.align.template68``) is placed in it: ``head``;
3. else, when the entry stores a ``face_box``, the template in that box: ``face_box``.

``docs/evaluation/rigs_results.md`` measures these landmarks on renders of rigs it never saw.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_FACE_SHARE = 0.4  # a detection narrower than this share of the head box is an eye or a cheek, not a face
MAX_FACE_OFFSET = 0.2  # ...or one whose centre is farther than this share of the head's width from its centre


@dataclass(frozen=True)
class HeadToFace:
    """The face's landmark box (the template's unit square) as fractions of the head's foreground box (left,
    top, right, bottom); chosen on our toon renders (module docstring)."""

    left: float = 0.05
    top: float = 0.20
    right: float = 0.95
    bottom: float = 0.80

    def box(self, head: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
        l, t, r, b = head
        w, h = r - l, b - t
        return (
            int(round(l + self.left * w)),
            int(round(t + self.top * h)),
            int(round(l + self.right * w)),
            int(round(t + self.bottom * h)),
        )


def template_points(box) -> np.ndarray:
    """The mean human 68-point template placed in ``box`` (its unit square scaled to the box)."""
    from .align import template68

    l, t, r, b = (float(v) for v in box)
    return template68() * np.array([r - l, b - t]) + np.array([l, t])


def plausible(face_box, mask: np.ndarray) -> bool:
    """Whether a detected face box could be the character's face: at least ``MIN_FACE_SHARE`` of the
    foreground's width on the rows it spans (the head there, not the shoulders below), centred on it."""
    l, t, r, b = (int(round(v)) for v in face_box)
    rows = mask[max(t, 0) : max(min(b, mask.shape[0]), max(t, 0) + 1)]
    cols = np.nonzero(rows.any(axis=0))[0]
    if not len(cols):
        return False
    hl, hr = int(cols.min()), int(cols.max()) + 1
    w = max(hr - hl, 1)
    return (r - l) >= MIN_FACE_SHARE * w and abs((l + r) / 2 - (hl + hr) / 2) <= MAX_FACE_OFFSET * w


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
    found = _largest_region(rgb, alpha)
    return None if found is None else found[0]


def _largest_region(rgb: np.ndarray, alpha: np.ndarray | None = None):
    """(box, mask) of the largest foreground region, or None."""
    import cv2

    mask = foreground_mask(rgb, alpha).astype(np.uint8)
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if n < 2:
        return None
    k = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    x, y, w, h, area = stats[k]
    if area < 0.02 * mask.size or w < 16 or h < 16:
        return None
    return (int(x), int(y), int(x + w), int(y + h)), labels == k


def character_points68(
    engine, rgb: np.ndarray, alpha: np.ndarray | None = None, face_box=None, mapping: HeadToFace | None = None
) -> tuple[np.ndarray, str] | None:
    """(68 landmarks, how: "detected" | "head" | "face_box") on a character image, or None when there is no
    face to find (module docstring)."""
    region = _largest_region(rgb, alpha)
    head = None if region is None else region[0]
    faces = engine.detector.detect(rgb)
    if faces and (region is None or plausible(faces[0].box, region[1])):
        return engine.predictor.predict(rgb, faces[0].box), "detected"
    if head is not None:
        return template_points((mapping or HeadToFace()).box(head)), "head"
    if face_box is not None:
        return template_points(face_box), "face_box"
    return None
