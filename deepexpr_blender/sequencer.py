"""Sequencer helpers shared by the feature rooms: the active movie strip, frame-rate checks, where a new strip
goes, and image sizes (for scaling a strip to the scene)."""

from __future__ import annotations

import struct

from . import compat


def active_movie_strip(scene):
    """The active strip when it is a movie strip, else None."""
    sed = scene.sequence_editor
    strip = sed.active_strip if sed else None
    return strip if strip is not None and strip.type == "MOVIE" else None


def fps_problem(scene, strip) -> str | None:
    """Why a movie strip's frames do not line up with the scene's (different frame rates), or None."""
    fps = getattr(strip, "fps", 0)
    scene_fps = scene.render.fps / scene.render.fps_base
    if fps and abs(scene_fps - fps) > 1e-3:
        return (
            f"{strip.name} runs at {fps:g} fps and the scene at {scene_fps:g} fps, so its frames do not line up "
            "with the scene's. Set the scene's frame rate to the strip's (Output Properties > Format)"
        )
    return None


def channel_above(sed, start: int, end: int) -> int:
    """The first channel above every strip that overlaps frames [start, end) (1 when none does), so a new
    strip there is drawn over the footage it covers."""
    taken = [s.channel for s in compat.strips_all(sed) if s.frame_final_start < end and s.frame_final_end > start]
    return max(taken, default=0) + 1


def png_size(path: str) -> tuple[int, int] | None:
    """(width, height) of a PNG from its header, or None when it is not a PNG."""
    try:
        with open(path, "rb") as f:
            head = f.read(24)
    except OSError:
        return None
    if len(head) < 24 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", head[16:24])
