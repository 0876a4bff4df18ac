"""Warp first, then refine: full-resolution colour frames that keep the photo's identity and add what a warp
cannot show.

1. The piecewise-affine warp (``backend.warp``) moves the photo itself along the landmarks, at its own size and
   colour: identity, hair, background and resolution are the photo's. A ring of fixed points around the face
   (``anchor_ring``) keeps the background beyond it still.
2. Where the target opens the mouth, the cavity and upper teeth are painted inside the inner lips
   (``backend.mouth``).
3. ``warp+refine`` only: the landmark-guided GAN (``backend.gan``, 64x64 gray) adds the shading a warp cannot
   make (lid closure, brow and nasolabial folds, teeth). Its *expression delta* is taken against its own
   rendering of the neutral face, warped the same way: ``r = G(crop, target) - warp(G(crop, source))``. The
   GAN's bias towards the faces it was trained on (CK+ identity, lighting) is in both terms and cancels; what
   is left is what the expression changes in appearance. ``r`` is weighted by a soft face mask in the crop,
   mapped back to the photo by the crop's similarity and added to the luminance (``backend.composite``).

``FrameRenderer`` does this for a whole transition; ``backend.sequence.generate`` uses it for ``warp`` and
``warp+refine``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from deepexpr_blender.core import protocol

from .align import alignment_matrix
from .appearance import AppearanceModel
from .composite import face_mask, face_size, paste_field
from .errors import DeepExprError
from .landmarks import semantic_from_68
from .mouth import paint_mouth
from .warp import PiecewiseAffineWarper, RemapWarper

MIN_FACE_PX = 32  # smallest face (landmark extent, pixels) a transition is made for
GAN_SIZE = 64


@dataclass
class RefineConfig:
    gain: float = 1.0  # scale of the GAN's expression delta
    appearance_gain: float = 1.5  # scale of the data-driven expression ratio images (1.5: chosen on FER2013 val)
    # ... except these expressions' own shading: joy's nasolabial folds at 1.5x darken into a moustache, and joy
    # is recognised at 1x already (0.97 on FER2013 test)
    appearance_gain_by_expression: dict[str, float] = field(default_factory=lambda: {"joy": 1.0})
    feather: float = 0.10  # soft mask feather (fraction of the face size)
    mode: str = "delta"  # delta: G(target) - warp(G(source)); direct: G(target) - crop(warped photo)


def check_landmarks(pts: np.ndarray, shape: tuple[int, ...], what: str = "target landmarks") -> np.ndarray:
    """68x2 finite landmarks, mostly inside the image, for a face at least ``MIN_FACE_PX`` wide; a clear
    INVALID_PARAMS error otherwise."""
    p = np.asarray(pts, np.float64)
    if p.shape != (68, 2):
        raise DeepExprError(protocol.INVALID_PARAMS, f"{what}: need 68 [x, y] points, got shape {list(p.shape)}")
    if not np.isfinite(p).all():
        raise DeepExprError(protocol.INVALID_PARAMS, f"{what}: not finite (NaN or infinity)")
    h, w = shape[:2]
    size = face_size(p)
    if size < MIN_FACE_PX:
        raise DeepExprError(
            protocol.INVALID_PARAMS,
            f"{what}: the face is {size:.0f} px across; transitions need at least {MIN_FACE_PX} px "
            "(use a larger photo or a closer crop)",
        )
    inside = (p[:, 0] >= -w) & (p[:, 0] <= 2 * w) & (p[:, 1] >= -h) & (p[:, 1] <= 2 * h)
    if not inside.all():
        raise DeepExprError(protocol.INVALID_PARAMS, f"{what}: points far outside the {w}x{h} image")
    return p


class _Crop:
    def __init__(self, image_bgr: np.ndarray, src68: np.ndarray):
        self.matrix = alignment_matrix(semantic_from_68(src68), GAN_SIZE)
        gray = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY)
        self.image = cv2.warpAffine(
            gray, self.matrix, (GAN_SIZE, GAN_SIZE), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE
        )

    def points(self, pts68: np.ndarray) -> np.ndarray:
        return pts68 @ self.matrix[:, :2].T + self.matrix[:, 2]


class GanRefiner:
    """The GAN's expression delta for one source face, pasted onto warped full-resolution frames."""

    def __init__(self, model, image_bgr: np.ndarray, src68: np.ndarray, cfg: RefineConfig | None = None):
        self.model, self.cfg = model, cfg or RefineConfig()
        self.shape = image_bgr.shape
        self.crop = _Crop(image_bgr, src68)  # the GAN's 64x64 gray crop, as backend.sequence.gan_crop makes it
        self.src_crop_pts = self.crop.points(src68)
        self.g_src = self._gan([self.src_crop_pts])[0]
        self.g_src_warper = PiecewiseAffineWarper(self.g_src, self.src_crop_pts)

    def _gan(self, crop_pts: list[np.ndarray]) -> list[np.ndarray]:
        import torch

        x = torch.from_numpy(self.crop.image.astype(np.float32) / 127.5 - 1)[None, None]
        lm = torch.from_numpy(np.stack([p / (GAN_SIZE - 1) * 2 - 1 for p in crop_pts]).astype(np.float32))
        with torch.inference_mode():
            y = self.model(x.expand(len(lm), -1, -1, -1), lm)
        return [(f[0].numpy().astype(np.float32) + 1) * 127.5 for f in y]

    def gan_frames(self, targets: list[np.ndarray]) -> list[np.ndarray]:
        """The GAN's 64x64 float frames for each target (image pixels), batched."""
        pts = [self.crop.points(t) for t in targets]
        return [g for i in range(0, len(pts), 64) for g in self._gan(pts[i : i + 64])]

    def residual(self, g: np.ndarray, target: np.ndarray, frame_bgr: np.ndarray) -> np.ndarray:
        """The masked, scaled 64x64 residual (gray levels) of GAN frame ``g`` for ``target`` (image pixels)."""
        p = self.crop.points(target)
        if self.cfg.mode == "direct":
            gray = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2GRAY)
            base = cv2.warpAffine(gray, self.crop.matrix, (GAN_SIZE, GAN_SIZE), flags=cv2.INTER_AREA)
        else:
            base = self.g_src_warper.warp(p)
        r = g - base.astype(np.float32)
        return r * face_mask((GAN_SIZE, GAN_SIZE), p, self.cfg.feather) * self.cfg.gain

    def apply(self, frame_bgr: np.ndarray, residual64: np.ndarray) -> np.ndarray:
        return paste_field(frame_bgr, residual64, self.crop.matrix, multiplicative=False)


class AppearanceRefiner:
    """The data-driven expression shading (``backend.appearance``) for one source face, applied to warped
    full-resolution frames as a luminance ratio through a soft face mask."""

    def __init__(
        self,
        model: AppearanceModel,
        image_shape,
        src68: np.ndarray,
        gain: float = 1.0,
        feather=0.10,
        gain_by_expression: dict[str, float] | None = None,
    ):
        self.model, self.gain, self.feather, self.shape = model, gain, feather, image_shape
        over = gain_by_expression or {}
        self.relative = np.array([over.get(e, gain) / gain if gain else 1.0 for e in model.expressions])
        sem = semantic_from_68(src68)
        self.crop_m = alignment_matrix(sem, GAN_SIZE)
        self.tmpl_m = alignment_matrix(sem, 1)
        self.src_t = self._template(src68)

    def _template(self, pts: np.ndarray) -> np.ndarray:
        return pts @ self.tmpl_m[:, :2].T + self.tmpl_m[:, 2]

    def log_ratio(self, target68: np.ndarray) -> np.ndarray:
        """(64, 64) masked log-ratio for a target (image pixels), in the source's crop."""
        w = self.model.weights(self.src_t, self._template(target68)) * self.relative
        p = target68 @ self.crop_m[:, :2].T + self.crop_m[:, 2]
        mask = face_mask((GAN_SIZE, GAN_SIZE), p, self.feather)
        # Inside the inner lips the frame shows the source's own mouth interior, stretched, or the painted one
        # (backend.mouth): the mean CK+ teeth there would only wash the photo's out.
        lips = np.zeros((GAN_SIZE * 4, GAN_SIZE * 4), np.uint8)
        cv2.fillPoly(lips, [np.round(p[60:68] * 4).astype(np.int32)], 255, cv2.LINE_AA)
        lips = cv2.resize(lips, (GAN_SIZE, GAN_SIZE), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
        mask *= 1 - cv2.GaussianBlur(lips, (0, 0), 0.8)
        return self.model.ratio(p, w) * mask * self.gain

    def apply(self, frame: np.ndarray, log_ratio64: np.ndarray) -> np.ndarray:
        return paste_field(frame, log_ratio64, self.crop_m, multiplicative=True)


def anchor_ring(paths: list[np.ndarray], shape: tuple[int, ...], margin: float = 0.6, n: int = 16) -> np.ndarray:
    """(k, 2) fixed points on an ellipse around every landmark set of the transition, ``margin`` of the face's
    extent outside it: the warp moves only what lies inside the ring, the background beyond it stays put.
    Points outside the image, or within a few pixels of its border, are dropped."""
    h, w = shape[:2]
    allp = np.concatenate(paths)
    c = paths[0].mean(0)
    ext = np.abs(allp - c).max(0) * (1 + margin)
    a = np.linspace(0, 2 * np.pi, n, endpoint=False)
    ring = c + np.stack([ext[0] * np.cos(a), ext[1] * np.sin(a)], 1)
    keep = (ring[:, 0] > 3) & (ring[:, 0] < w - 4) & (ring[:, 1] > 3) & (ring[:, 1] < h - 4)
    return ring[keep]


class FrameRenderer:
    """Frames of a transition at the photo's own resolution and colour: warp, mouth interior and, with a GAN
    model, the refinement. ``render(i)`` is frame i (BGR uint8, the photo's size)."""

    def __init__(
        self,
        image_bgr: np.ndarray,
        src68: np.ndarray,
        path: list[np.ndarray],
        gan_model=None,
        cfg: RefineConfig | None = None,
        appearance: AppearanceModel | None = None,
    ):
        self.cfg = cfg = cfg or RefineConfig()
        self.src = check_landmarks(src68, image_bgr.shape, "source landmarks")
        self.path = [check_landmarks(p, image_bgr.shape) for p in path]
        self.ring = anchor_ring([self.src, *self.path], image_bgr.shape)
        self.warper = RemapWarper(image_bgr, np.concatenate([self.src, self.ring]))
        self.refiner = GanRefiner(gan_model, image_bgr, self.src, cfg) if gan_model is not None else None
        self.appearance = (
            AppearanceRefiner(
                appearance,
                image_bgr.shape,
                self.src,
                cfg.appearance_gain,
                cfg.feather,
                cfg.appearance_gain_by_expression,
            )
            if appearance is not None
            else None
        )
        self._gan: list[np.ndarray] | None = None

    def warp_only(self, i: int, check=None) -> np.ndarray:
        """Frame i of the warp alone (the anchor ring held fixed)."""
        return self.warp_points(self.path[i], check)

    def warp_points(self, pts68: np.ndarray, check=None) -> np.ndarray:
        return self.warper.warp(np.concatenate([pts68, self.ring]), check)

    def render(self, i: int, check=None) -> np.ndarray:
        """Frame i; ``check`` (optional) is called while warping and may raise to stop (cancel)."""
        frame = self.warp_only(i, check)
        if self.appearance is not None:
            frame = self.appearance.apply(frame, self.appearance.log_ratio(self.path[i]))
        if self.refiner is not None:
            if self._gan is None:
                self._gan = self.refiner.gan_frames(self.path)  # one batched GAN pass for the whole transition
            frame = self.refiner.apply(frame, self.refiner.residual(self._gan[i], self.path[i], frame))
        return paint_mouth(frame, self.path[i], self.src)
