"""What the add-on tells the user: the backend's status (one per Blender session) and window redraws."""

from __future__ import annotations

import bpy

# The backend's status line: "text" always shown, "error" (what failed and what to do) or None, and the
# backend's initialize answer ("info") once it is running.
backend: dict = {"text": "Backend not started", "error": None, "info": None}


def set_backend(text: str, error: str | None = None) -> None:
    backend["text"], backend["error"] = text, error
    redraw()


def redraw() -> None:
    """Redraw every area (panels show the new state)."""
    wm = bpy.context.window_manager
    for window in getattr(wm, "windows", []):
        for area in window.screen.areas:
            area.tag_redraw()


def wrap(text: str, width: int) -> list[str]:
    """``text`` in lines of at most ``width`` characters (labels do not wrap by themselves)."""
    words, lines, cur = text.split(), [], ""
    for w in words:
        if cur and len(cur) + len(w) + 1 > width:
            lines.append(cur)
            cur = w
        else:
            cur = f"{cur} {w}".strip()
    return lines + ([cur] if cur else [])
