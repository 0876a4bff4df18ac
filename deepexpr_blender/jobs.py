"""Bookkeeping of background work on the scene (``Scene.deepexpr``: busy, status, progress): callbacks run
later on the main thread, so they look the scene up again by name; failures land in the panel and the
backend status."""

from __future__ import annotations

import bpy

from . import status
from .client import BackendError


def scene(name: str):
    """The scene called ``name``, or None when it was renamed or deleted meanwhile."""
    return bpy.data.scenes.get(name)


def on_failure(scene_name: str, what: str):
    """An ``on_error`` callback: the scene is no longer busy and its status says what failed."""

    def on_error(err: BackendError) -> None:
        sc = scene(scene_name)
        if sc:
            sc.deepexpr.busy = False
            sc.deepexpr.status = f"{what} failed: {err}"
        status.set_backend(status.backend["text"], f"{what} failed: {err}")

    return on_error
