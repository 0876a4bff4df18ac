"""Pasting a crop-level change back into the full-resolution colour photo, and measuring the seam.

The refiner works on a small gray crop; what it adds is a luminance residual. The residual is weighted by a
soft face mask (the landmarks' hull, feathered inwards so it is zero at and outside the hull's edge), mapped
back to the photo by the crop's similarity, and added to all three colour channels alike: shading changes,
hue and saturation stay the photo's own, and nothing outside the face moves.

Seam measure (``seam_ratio``): the mean gradient magnitude of the composite in a band along the mask's
boundary over that of the image it was pasted on. A visible seam adds edges there (ratio well above 1); a
clean paste-back leaves the band as it was (ratio ~1).
"""

from __future__ import annotations

import cv2
import numpy as np

FACE_OUTLINE = list(range(17)) + list(range(26, 16, -1))  # jaw, then brows right to left: a closed outline


def face_size(pts68: np.ndarray) -> float:
    p = np.asarray(pts68, np.float64)
    return float(max(np.ptp(p[:, 0]), np.ptp(p[:, 1])))


def face_mask(shape: tuple[int, int], pts68: np.ndarray, feather: float = 0.08, inset: float = 0.08) -> np.ndarray:
    """(H, W) float32 in [0, 1]: 1 well inside the face, falling smoothly to 0 at the hull of the 68 points.
    ``feather`` and ``inset`` are fractions of the face size (twice the blur sigma, and how far inside the edge the
    mask reaches 0.5; at the hull itself it is ~2 % with the defaults)."""
    h, w = shape[:2]
    p = np.asarray(pts68, np.float64)
    size = face_size(p)
    hull = cv2.convexHull(np.round(p).astype(np.int32))
    mask = np.zeros((h, w), np.uint8)
    cv2.fillConvexPoly(mask, hull, 255, cv2.LINE_AA)
    k = int(round(inset * size))
    if k > 0:
        mask = cv2.erode(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1)))
    sigma = max(0.5, feather * size / 2)
    return cv2.GaussianBlur(mask.astype(np.float32) / 255, (0, 0), sigma)


def add_luminance(image: np.ndarray, residual: np.ndarray) -> np.ndarray:
    """uint8 image (gray or colour) plus a float (H, W) residual on every channel, clipped."""
    r = residual if image.ndim == 2 else residual[..., None]
    return np.clip(image.astype(np.float32) + r + 0.5, 0, 255).astype(np.uint8)


def scale_luminance(image: np.ndarray, log_ratio: np.ndarray) -> np.ndarray:
    """uint8 image (gray or colour) times exp(``log_ratio``) (H, W) on every channel, clipped: shading
    changes by the same factor in R, G and B, so hue and saturation stay the photo's."""
    f = np.exp(log_ratio.astype(np.float32))
    f = f if image.ndim == 2 else f[..., None]
    return np.clip(image.astype(np.float32) * f + 0.5, 0, 255).astype(np.uint8)


def crop_to_image(field64: np.ndarray, matrix: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A field in crop pixels (``matrix``: image -> crop) mapped back onto the (H, W) image, bilinear, zero
    outside the crop."""
    h, w = shape[:2]
    return cv2.warpAffine(
        field64.astype(np.float32),
        matrix.astype(np.float64),
        (w, h),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )


def crop_roi(matrix: np.ndarray, shape: tuple[int, ...], size: int = 64) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1): the image box the ``size`` crop covers (``matrix``: image -> crop), clipped."""
    a, b = matrix[:, :2], matrix[:, 2]
    corners = (np.array([[0, 0], [size, 0], [0, size], [size, size]], np.float64) - b) @ np.linalg.inv(a).T
    h, w = shape[:2]
    x0, y0 = np.maximum(np.floor(corners.min(0)).astype(int), 0)
    x1, y1 = np.minimum(np.ceil(corners.max(0)).astype(int) + 1, [w, h])
    return int(x0), int(y0), int(max(x1, x0)), int(max(y1, y0))


def paste_field(image: np.ndarray, field64: np.ndarray, matrix: np.ndarray, multiplicative: bool) -> np.ndarray:
    """``image`` with a crop-space field (gray levels, or a log-ratio when ``multiplicative``) mapped back by
    ``matrix`` (image -> crop) and applied on every channel, only inside the box the crop covers."""
    x0, y0, x1, y1 = crop_roi(matrix, image.shape, field64.shape[0])
    out = image.copy()
    if x1 <= x0 or y1 <= y0:
        return out
    m = matrix.astype(np.float64).copy()
    m[:, 2] += m[:, :2] @ np.array([x0, y0], np.float64)  # ROI pixels -> crop
    f = crop_to_image(field64, m, (y1 - y0, x1 - x0))
    roi = image[y0:y1, x0:x1]
    out[y0:y1, x0:x1] = scale_luminance(roi, f) if multiplicative else add_luminance(roi, f)
    return out


def _gradient(gray: np.ndarray) -> np.ndarray:
    g = gray.astype(np.float32)
    return np.hypot(cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3))


def _gray(img: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(img, cv2.COLOR_BGR2GRAY) if img.ndim == 3 else img


def seam_ratio(base: np.ndarray, composite: np.ndarray, mask: np.ndarray, band: tuple[float, float] = (0.02, 0.5)):
    """Mean gradient magnitude of ``composite`` over that of ``base`` in the mask's boundary band (mask values
    in ``band``: where the paste-back fades out); 1.0 when nothing was added there."""
    sel = (mask > band[0]) & (mask < band[1])
    if not sel.any():
        return 1.0
    gb, gc = _gradient(_gray(base))[sel].mean(), _gradient(_gray(composite))[sel].mean()
    return float(gc / max(gb, 1e-6))


def residual_edge_ratio(base: np.ndarray, composite: np.ndarray, mask: np.ndarray) -> float:
    """Gradient energy of the added change (composite - base) in the mask's boundary band over that inside the
    face (mask > 0.5): small when the change fades out smoothly instead of stopping at an edge."""
    d = _gray(composite).astype(np.float32) - _gray(base).astype(np.float32)
    g = _gradient(d) ** 2
    band, inside = (mask > 0.02) & (mask < 0.5), mask > 0.5
    if not band.any() or not inside.any():
        return 0.0
    return float(g[band].mean() / max(g[inside].mean(), 1e-6))
