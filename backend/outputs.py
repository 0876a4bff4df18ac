"""Writing what the backend makes (images, frame folders, sheets, GIFs): the one place where every way a write
can fail -- an unwritable or missing place, a file where a folder is needed, a folder where a file is, an
extension no encoder knows, a full disk -- becomes OUTPUT_FAILED naming the path and the reason."""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np

from deepexpr_blender.core import protocol

from .errors import DeepExprError

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def failed(path: str, why: str) -> DeepExprError:
    return DeepExprError(protocol.OUTPUT_FAILED, f"cannot write {path}: {why}", {"path": path})


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.errno is not None:
        return os.strerror(exc.errno)
    return str(exc) or type(exc).__name__


def folder(path: str) -> str:
    """Make the folder ``path`` (and its parents) unless it exists."""
    if os.path.isdir(path):
        return path
    if os.path.lexists(path):
        raise failed(path, "a file is there, not a folder")
    try:
        os.makedirs(path, exist_ok=True)
    except (OSError, ValueError) as exc:
        raise failed(path, _reason(exc)) from None
    return path


def file_path(path: str, exts: tuple[str, ...] | None = None) -> str:
    """Check that ``path`` can be a file of one of ``exts`` and make its folder."""
    if exts is not None and not path.lower().endswith(exts):
        raise failed(path, f"unknown extension; use one of {', '.join(exts)}")
    if os.path.isdir(path):
        raise failed(path, "a folder is there")
    if os.path.lexists(path) and not os.path.isfile(path):  # a device, a FIFO (would block), a dangling link
        raise failed(path, "something other than a regular file is there")
    folder(os.path.dirname(os.path.abspath(path)))
    return path


def write_bytes(path: str, data: bytes) -> str:
    try:
        with open(path, "wb") as f:
            f.write(data)
    except (OSError, ValueError) as exc:
        raise failed(path, _reason(exc)) from None
    return path


def write_image(path: str, image: np.ndarray) -> str:
    """Encode a BGR (or gray) image by the extension of ``path`` (OpenCV) and write it."""
    import cv2

    file_path(path, IMAGE_EXTS)
    ext = os.path.splitext(path)[1].lower()
    try:
        ok, buf = cv2.imencode(ext, image)
    except cv2.error as exc:
        raise failed(path, f"the image does not encode as {ext}: {str(exc).strip().splitlines()[-1][:200]}") from None
    if not ok:
        raise failed(path, f"the image does not encode as {ext}")
    return write_bytes(path, buf.tobytes())


def write_with(path: str, save: Callable[[str], None], exts: tuple[str, ...] | None = None) -> str:
    """Write through a library's own ``save(path)`` (e.g. PIL for GIFs), with the same checks and errors."""
    file_path(path, exts)
    try:
        save(path)
    except OSError as exc:
        raise failed(path, _reason(exc)) from None
    except (ValueError, KeyError) as exc:  # PIL: an unknown format
        raise failed(path, str(exc) or type(exc).__name__) from None
    return path
