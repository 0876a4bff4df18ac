"""Thumbnails as icons (bpy.utils.previews), loaded once per file path and modification time; freed when the
add-on is unregistered (``sidebar`` room)."""

from __future__ import annotations

import os

_pcoll = None


def icon(path: str) -> int:
    """Icon id of an image file (0 when it cannot be shown, e.g. in background mode)."""
    global _pcoll
    if not path or not os.path.isfile(path):
        return 0
    if _pcoll is None:
        import bpy.utils.previews

        _pcoll = bpy.utils.previews.new()
    key = f"{path}:{os.path.getmtime(path)}"
    item = _pcoll.get(key) or _pcoll.load(key, path, "IMAGE")
    return item.icon_id


def unregister() -> None:
    global _pcoll
    if _pcoll is not None:
        import bpy.utils.previews

        bpy.utils.previews.remove(_pcoll)
        _pcoll = None
