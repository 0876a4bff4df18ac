"""The inside of an opening mouth: a dark cavity with upper teeth, painted inside the target's inner-lip polygon.

A warp can only stretch the lips over the gap of a mouth that was closed in the source photo. Where the target
landmarks open the mouth further than the source's, this paints what shows through the gap: a dark cavity
(the lips' own colour, darkened, deepest in the middle), a band of upper teeth under the upper lip and a
shorter, shadowed band of lower teeth, lit like the face around it. The paint is feathered at the polygon's
edge and fades in with the opening, so a transition does not pop.

iBUG 68 indices: 48/54 the mouth corners, 60..67 the inner lip (60 left corner, 61-63 upper, 64 right corner,
65-67 lower).
"""

from __future__ import annotations

import cv2
import numpy as np

INNER_UPPER = (61, 62, 63)
INNER_LOWER = (67, 66, 65)
OPEN_START = 0.03  # opening (gap / mouth width) above the source's at which the cavity starts to show
OPEN_FULL = 0.10  # ... and at which it is fully painted
STRETCH_OK = 2.0  # the warp may stretch the source's own mouth interior this much before paint is needed


def mouth_opening(pts68: np.ndarray) -> float:
    """Mean gap between the inner lips over the mouth width (0 for a closed mouth, ~0.5 for a wide-open one)."""
    p = np.asarray(pts68, np.float64)
    gap = float(np.mean(np.linalg.norm(p[list(INNER_LOWER)] - p[list(INNER_UPPER)], axis=1)))
    width = float(np.linalg.norm(p[54] - p[48]))
    return gap / max(width, 1e-6)


def cavity_strength(target68: np.ndarray, source68: np.ndarray | None = None) -> float:
    """0..1: how much of a painted cavity the target needs beyond what the source photo already shows. The warp
    stretches the source's own mouth interior (its teeth, if it shows them) over the target's gap; up to twice
    the source's opening that looks right, beyond it the paint fades in."""
    base = STRETCH_OK * max(mouth_opening(source68), 0.0) if source68 is not None else 0.0
    return float(np.clip((mouth_opening(target68) - base - OPEN_START) / (OPEN_FULL - OPEN_START), 0.0, 1.0))


def _upper_lip_curve(p: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """y of the upper inner lip at each x (piecewise linear through 60, 61, 62, 63, 64)."""
    pts = p[[60, 61, 62, 63, 64]]
    order = np.argsort(pts[:, 0])
    return np.interp(xs, pts[order, 0], pts[order, 1])


def _lower_lip_curve(p: np.ndarray, xs: np.ndarray) -> np.ndarray:
    pts = p[[60, 67, 66, 65, 64]]
    order = np.argsort(pts[:, 0])
    return np.interp(xs, pts[order, 0], pts[order, 1])


def paint_mouth(image: np.ndarray, target68: np.ndarray, source68: np.ndarray | None = None) -> np.ndarray:
    """``image`` (H, W) gray or (H, W, 3), uint8, already warped to ``target68``; returns a copy with the mouth
    interior painted where the target opens the mouth beyond the source (unchanged when it does not)."""
    a = cavity_strength(target68, source68)
    if a <= 0:
        return image
    p = np.asarray(target68, np.float64)
    h, w = image.shape[:2]
    width = float(np.linalg.norm(p[54] - p[48]))
    inner = p[60:68]
    m = max(3.0, 0.15 * width)
    x0, y0 = (np.floor(inner.min(0) - m)).astype(int)
    x1, y1 = (np.ceil(inner.max(0) + m)).astype(int)
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return image
    out = image.copy()
    roi = out[y0:y1, x0:x1].astype(np.float32)
    color = roi if roi.ndim == 3 else roi[..., None]
    rh, rw = roi.shape[:2]
    local = p - [x0, y0]
    # The inner-lip polygon, supersampled 4x for a clean edge, then feathered.
    s = 4
    poly = np.zeros((rh * s, rw * s), np.uint8)
    cv2.fillPoly(poly, [np.round(local[60:68] * s).astype(np.int32)], 255, cv2.LINE_AA)
    mask = cv2.resize(poly, (rw, rh), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    # Feather inwards: erode a little, then blur, so the lips keep their edge and the cavity has no hard rim.
    sigma = max(0.5, 0.012 * width)
    mask = cv2.GaussianBlur(mask, (0, 0), sigma) * mask
    # Lighting: the mean of the ring just outside the lips sets the teeth's brightness; the lips' colour
    # (darkened) is the cavity's.
    ring = cv2.fillPoly(np.zeros((rh, rw), np.uint8), [np.round(local[48:60]).astype(np.int32)], 1).astype(bool)
    ring &= mask < 0.05
    lip = color[ring].mean(0) if ring.any() else color.reshape(-1, color.shape[2]).mean(0)
    skin_lum = float(lip.mean())
    xs = np.arange(rw, dtype=np.float64) + 0.5
    yy = np.arange(rh, dtype=np.float64)[:, None] + 0.5
    top = _upper_lip_curve(local, xs)[None, :]
    bottom = _lower_lip_curve(local, xs)[None, :]
    gap = np.maximum(bottom - top, 1e-3)
    v = np.clip((yy - top) / gap, 0, 1)  # 0 at the upper lip, 1 at the lower
    cavity = lip * 0.22 * (0.6 + 0.4 * np.abs(2 * v - 1))[..., None]  # darkest halfway down
    # Teeth: an upper band under the upper lip (at most half the gap and 16 % of the mouth width tall) and a
    # shorter, shadowed lower band above the lower lip; darker toward the corners, faint gaps between incisors.
    cx = 0.5 * (local[62, 0] + local[66, 0])
    lateral = np.clip(np.abs(xs - cx) / (0.5 * width), 0, 1)[None, :]
    edge = max(0.6, 0.02 * width)
    upper_h = np.minimum(0.5 * gap, 0.16 * width)
    lower_h = np.minimum(0.22 * gap, 0.07 * width)
    upper = np.clip((top + upper_h - yy) / edge, 0, 1) * (yy >= top - 1)
    lower = np.clip((yy - (bottom - lower_h)) / edge, 0, 1) * (yy <= bottom + 1)
    corners = 1 - np.clip((lateral - 0.6) / 0.3, 0, 1)  # no teeth visible in the corners
    upper, lower = upper * corners, lower * corners
    incisor = 0.5 * width / 4.5
    phase = np.abs(((xs - cx) / incisor) % 1.0 - 0.5)[None, :]  # 0.5 at a tooth's middle, 0 at a gap
    gaps = 1 - 0.15 * np.clip(1 - phase / 0.08, 0, 1) * (lateral < 0.6)
    tooth_lum = np.clip(0.95 * skin_lum + 70, 120, 235)
    depth = 0.85 + 0.15 * np.clip((top + upper_h - yy) / np.maximum(upper_h, 1), 0, 1)
    shade = (1 - 0.35 * lateral) * gaps * (upper * depth + lower * 0.72) / np.maximum(upper + lower, 1e-6)
    teeth_mask = np.clip(upper + lower, 0, 1)
    tint = np.array([0.97, 1.0, 1.02] if color.shape[2] == 3 else [1.0], np.float32)  # BGR: a little warm
    teeth = tooth_lum * shade[..., None] * tint
    paint = cavity * (1 - teeth_mask[..., None]) + teeth * teeth_mask[..., None]
    alpha = (a * mask)[..., None]
    res = color * (1 - alpha) + paint.astype(np.float32) * alpha
    res = np.clip(res + 0.5, 0, 255).astype(np.uint8)
    out[y0:y1, x0:x1] = res if image.ndim == 3 else res[..., 0]
    return out
