"""Piecewise-affine warp of an image along landmarks (Delaunay triangles): the classical baseline for the
expression GAN, and a full-resolution fallback for animators.

The 68 landmarks plus 8 points on the image border are triangulated once (on the source points); each
triangle's affine map from the target triangle back to the source one is applied with OpenCV inside the
triangle's bounding box. The border points stay put, so the background does not move.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
from scipy.spatial import Delaunay


def border_points(w: int, h: int) -> np.ndarray:
    return np.array(
        [[0, 0], [w / 2, 0], [w - 1, 0], [w - 1, h / 2], [w - 1, h - 1], [w / 2, h - 1], [0, h - 1], [0, h / 2]],
        dtype=np.float64,
    )


class PiecewiseAffineWarper:
    """Warp one source image to many target landmark sets (the triangulation is computed once)."""

    def __init__(self, image: np.ndarray, src_points: np.ndarray):
        self.image = image
        h, w = image.shape[:2]
        self.src = np.concatenate([np.asarray(src_points, np.float64), border_points(w, h)])
        self.tri = Delaunay(self.src).simplices

    def warp(self, dst_points: np.ndarray, check: Callable[[], None] | None = None) -> np.ndarray:
        """The source image with its landmarks moved to ``dst_points``. ``check()`` runs before each triangle
        (cancellation reaches the loop even when one frame is slow)."""
        h, w = self.image.shape[:2]
        dst = np.concatenate([np.asarray(dst_points, np.float64), border_points(w, h)])
        if not np.isfinite(dst).all():
            raise ValueError("target landmarks must be finite")
        out = self.image.copy()
        for t in self.tri:
            if check is not None:
                check()
            s_tri, d_tri = self.src[t].astype(np.float32), dst[t].astype(np.float32)
            x, y, bw, bh = cv2.boundingRect(d_tri)
            x0, y0 = max(x, 0), max(y, 0)
            x1, y1 = min(x + bw, w), min(y + bh, h)
            if x1 <= x0 or y1 <= y0:
                continue
            m = cv2.getAffineTransform((d_tri - [x0, y0]).astype(np.float32), s_tri)  # target rect px -> source px
            patch = cv2.warpAffine(
                self.image,
                m,
                (x1 - x0, y1 - y0),
                flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                borderMode=cv2.BORDER_REFLECT,
            )
            mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
            cv2.fillConvexPoly(mask, np.round(d_tri - [x0, y0]).astype(np.int32), 1, cv2.LINE_AA)
            region = out[y0:y1, x0:x1]
            sel = mask.astype(bool)
            region[sel] = patch[sel]
        return out


class RemapWarper:
    """The same piecewise-affine warp as ``PiecewiseAffineWarper``, made as one dense backward map and a single
    ``cv2.remap`` over the bounding box of the triangles that move (triangle ids rasterised once per frame, the
    per-triangle affine maps solved in one batch): several times faster on large photos, and the map is
    continuous across triangle edges."""

    def __init__(self, image: np.ndarray, src_points: np.ndarray):
        self.image = image
        h, w = image.shape[:2]
        self.src = np.concatenate([np.asarray(src_points, np.float64), border_points(w, h)])
        self.tri = Delaunay(self.src).simplices

    def warp(self, dst_points: np.ndarray, check=None) -> np.ndarray:
        """The warped image; ``check`` (optional) is called between bands of rows and may raise to stop (cancel)."""
        h, w = self.image.shape[:2]
        dst = np.concatenate([np.asarray(dst_points, np.float64), border_points(w, h)])
        out = self.image.copy()
        moved = np.abs(dst - self.src).max(1) > 1e-6
        tris = self.tri[moved[self.tri].any(1)]
        if len(tris) == 0:
            return out
        corners = dst[tris].reshape(-1, 2)
        x0, y0 = np.maximum(np.floor(corners.min(0)).astype(int), 0)
        x1, y1 = np.minimum(np.ceil(corners.max(0)).astype(int) + 1, [w, h])
        if x1 <= x0 or y1 <= y0:
            return out
        label = np.zeros((y1 - y0, x1 - x0), np.int32)
        for k, t in enumerate(tris, 1):
            cv2.fillConvexPoly(label, np.round(dst[t] - [x0, y0]).astype(np.int32), k)
        # Affine dst -> src per triangle: [sx sy] = M @ [dx dy 1], from the three corners.
        d = np.concatenate([dst[tris], np.ones((len(tris), 3, 1))], 2)  # (T, 3, 3)
        s = self.src[tris]  # (T, 3, 2)
        det_ok = np.abs(np.linalg.det(d)) > 1e-9
        m = np.zeros((len(tris) + 1, 2, 3))
        m[0] = [[1, 0, 0], [0, 1, 0]]  # label 0: pixels of triangles that do not move
        m[1:][det_ok] = np.transpose(np.linalg.solve(d[det_ok], s[det_ok]), (0, 2, 1))
        m[1:][~det_ok] = m[0]
        band = 128  # rows at a time: bounded memory, and a cancel is heard within one band
        for r0 in range(y0, y1, band):
            if check is not None:
                check()
            r1 = min(r0 + band, y1)
            ys, xs = np.mgrid[r0:r1, x0:x1].astype(np.float64)
            a = m[label[r0 - y0 : r1 - y0]]  # (rows, W, 2, 3)
            mx = (a[..., 0, 0] * xs + a[..., 0, 1] * ys + a[..., 0, 2]).astype(np.float32)
            my = (a[..., 1, 0] * xs + a[..., 1, 1] * ys + a[..., 1, 2]).astype(np.float32)
            out[r0:r1, x0:x1] = cv2.remap(self.image, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        return out
