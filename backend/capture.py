"""Frames from a webcam index, a video file or a stream URL, through OpenCV: one frame to a file
(``capture_frame``), or every n-th frame of a video in memory (``video_frames``)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from deepexpr_blender.core import protocol

from . import outputs
from .errors import DeepExprError

log = logging.getLogger(__name__)


def parse_source(source: str | int) -> str | int:
    """``"0"`` / ``0`` -> webcam index 0; anything else is a path or URL."""
    if isinstance(source, int):
        return source
    s = str(source).strip()
    return int(s) if s.isdigit() else s


def capture_frame(source: str | int, out: str, frame: int | None = None, warmup: int = 5) -> dict:
    """Grab one frame and write it to ``out`` (PNG/JPEG by extension).

    For a webcam, ``warmup`` frames are read and dropped first so exposure settles. For a video file,
    ``frame`` seeks to that frame index (default: the first).
    """
    import cv2

    outputs.file_path(out, outputs.IMAGE_EXTS)  # before opening a webcam
    src = parse_source(source)
    if isinstance(src, str) and "://" not in src and not os.path.exists(src):
        raise DeepExprError(protocol.CAPTURE_FAILED, f"video file not found: {src}", {"source": src})
    cap = cv2.VideoCapture(src)
    try:
        if not cap.isOpened():
            what = f"webcam {src}" if isinstance(src, int) else f"video {src}"
            raise DeepExprError(protocol.CAPTURE_FAILED, f"cannot open {what}", {"source": str(src)})
        n_frames = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        if isinstance(src, int):
            for _ in range(warmup):
                cap.read()
        elif frame:
            if n_frames and not 0 <= frame < n_frames:
                raise DeepExprError(protocol.INVALID_PARAMS, f"frame {frame} outside 0..{n_frames - 1}")
            cap.set(cv2.CAP_PROP_POS_FRAMES, frame)
        ok, img = cap.read()
        if not ok or img is None:
            raise DeepExprError(protocol.CAPTURE_FAILED, f"no frame could be read from {src}", {"source": str(src)})
        outputs.write_image(out, img)
        return {
            "path": out,
            "width": int(img.shape[1]),
            "height": int(img.shape[0]),
            "source": str(src),
            "frame": int(frame or 0),
            "frame_count": n_frames,
        }
    finally:
        cap.release()


@dataclass
class Video:
    """An open video file: its frame count (0 when the container does not say) and its frames."""

    source: str
    frame_count: int
    _cap: Any

    def frames(self, step: int = 1) -> Iterator[tuple[int, np.ndarray]]:
        """``(frame index, RGB array)`` for every ``step``-th frame, decoded in memory (nothing is written)."""
        import cv2

        k = 0
        while True:
            if not self._cap.grab():  # every frame is read from the stream, only the sampled ones decoded
                return
            if k % step == 0:
                ok, img = self._cap.retrieve()
                if not ok or img is None:
                    return
                yield k, cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
            k += 1


@contextmanager
def open_video(source: str) -> Iterator[Video]:
    """Open a video file (CAPTURE_FAILED when it cannot be opened); released when the block ends."""
    import cv2

    cap = cv2.VideoCapture(source)
    try:
        if not cap.isOpened():
            raise DeepExprError(protocol.CAPTURE_FAILED, f"cannot open video {source}", {"source": source})
        yield Video(source, int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0), cap)
    finally:
        cap.release()
