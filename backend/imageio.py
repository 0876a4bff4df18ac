"""Decoding images from disk into 8-bit RGB arrays, whatever their depth, channels and orientation."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from deepexpr_blender.core import protocol

from .errors import DeepExprError, invalid_image

log = logging.getLogger(__name__)

# Images with more pixels than this are refused outright (decoding them alone would take seconds and GBs).
MAX_PIXELS = 64_000_000
# Images whose longer side exceeds this are downscaled before detection; coordinates are mapped back.
MAX_SIDE = 2048
# Images whose longer side is below this (e.g. 48x48 data set crops) are upscaled: dlib needs ~80 px faces.
MIN_SIDE = 192

Image.MAX_IMAGE_PIXELS = None  # we enforce our own limit, with a clearer message


@dataclass
class Decoded:
    """An image ready for the engine. ``rgb`` is HxWx3 uint8; ``scale`` maps processed to original pixels
    (original = processed / scale)."""

    rgb: np.ndarray
    original_size: tuple[int, int]  # (width, height) after EXIF orientation
    scale: float
    mode: str  # the file's PIL mode, for reporting

    @property
    def downscaled(self) -> bool:
        return self.scale != 1.0


def to_rgb8(img: Image.Image) -> np.ndarray:
    """Convert any PIL mode (1, L, LA, P, RGB, RGBA, I;16, I, F, CMYK, ...) to HxWx3 uint8."""
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        if mode == "F":
            lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
            arr = (arr - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(arr)
        else:
            # 16-bit (or 32-bit int holding 16-bit data): scale the full 16-bit range to 8 bits.
            arr = arr / 257.0 if arr.max(initial=0) > 255 or mode.startswith("I;16") else arr
        gray = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info):
        # Composite transparent pixels on mid-gray so a transparent background does not read as black.
        rgba = img.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, (128, 128, 128, 255))
        img = Image.alpha_composite(bg, rgba)
    rgb = np.asarray(img.convert("RGB"), dtype=np.uint8)
    if rgb.dtype != np.uint8:  # pragma: no cover - PIL always returns uint8 for RGB
        rgb = rgb.astype(np.uint8)
    return rgb


def from_array(rgb: np.ndarray, mode: str = "RGB", max_side: int = MAX_SIDE, min_side: int = MIN_SIDE) -> Decoded:
    """Wrap an HxWx3 (or HxW) uint8 array, rescaled into [min_side, max_side] as decode_image does."""
    import cv2

    if rgb.ndim == 2:
        rgb = np.repeat(rgb[:, :, None], 3, axis=2)
    oh, ow = rgb.shape[:2]
    longest = max(oh, ow)
    scale = 1.0
    if longest > max_side:
        scale = max_side / longest
        size = (max(1, round(ow * scale)), max(1, round(oh * scale)))  # a 70000x1 strip keeps one row
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        log.info("downscaled a %dx%d image by %.3f", ow, oh, scale)
    elif longest < min_side:
        scale = min_side / longest
        size = (max(1, round(ow * scale)), max(1, round(oh * scale)))
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_CUBIC)
    return Decoded(rgb=np.ascontiguousarray(rgb), original_size=(ow, oh), scale=scale, mode=mode)


def decode_image(
    path: str | os.PathLike, max_side: int = MAX_SIDE, max_pixels: int = MAX_PIXELS, min_side: int = MIN_SIDE
) -> Decoded:
    """Decode ``path``; raise DeepExprError(INVALID_IMAGE / IMAGE_TOO_LARGE) with a clear message if it cannot."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise invalid_image(f"no such file: {path}", path)
    if os.path.getsize(path) == 0:
        raise invalid_image(f"empty file (0 bytes): {path}", path)
    try:
        with Image.open(path) as img:
            w, h = img.size
            if w * h > max_pixels:
                raise DeepExprError(
                    protocol.IMAGE_TOO_LARGE,
                    f"image is {w}x{h} ({w * h / 1e6:.0f} MP), over the {max_pixels / 1e6:.0f} MP limit; "
                    f"downscale it first",
                    {"path": path, "width": w, "height": h},
                )
            mode = img.mode
            if getattr(img, "n_frames", 1) > 1:
                img.seek(0)
            img.load()  # raises on truncated data
            img = ImageOps.exif_transpose(img)
            rgb = to_rgb8(img)
    except DeepExprError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise invalid_image(f"cannot decode {path}: {exc}", path) from None
    return from_array(rgb, mode=mode, max_side=max_side, min_side=min_side)
