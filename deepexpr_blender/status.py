"""What the add-on tells the user: the backend's status (one per Blender session), messages in the status bar,
and window redraws."""

from __future__ import annotations

import logging

import bpy

log = logging.getLogger(__name__)

# The backend's status line: "text" always shown, "error" (what failed and what to do) or None, and the
# backend's initialize answer ("info") once it is running.
backend: dict = {"text": "Backend not started", "error": None, "info": None}


def set_backend(text: str, error: str | None = None) -> None:
    backend["text"], backend["error"] = text, error
    redraw()


def notify(text: str, level: str = "ERROR") -> None:
    """Show ``text`` in the status bar (and the Info log) when no operator is running to report it, e.g. when a
    background job fails later, from the timer. Background mode (tests, scripts): the log only."""
    log.log(logging.ERROR if level == "ERROR" else logging.INFO, "%s", text)
    wm = bpy.context.window_manager
    windows = list(getattr(wm, "windows", []))
    if bpy.app.background or not windows:
        return
    try:
        with bpy.context.temp_override(window=windows[0]):
            bpy.ops.deepexpr.notify("EXEC_DEFAULT", level=level, message=text)
    except (RuntimeError, AttributeError):  # not registered (unregistering) or no usable window
        log.debug("status bar message not shown: %s", text)


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
