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


FLASH_SECONDS = 12.0
_flash = {"token": 0}


def _status_bar(text: str | None) -> None:
    for win in getattr(bpy.context.window_manager, "windows", []):
        try:
            with bpy.context.temp_override(window=win):
                workspace = bpy.context.workspace
                if workspace is not None:
                    workspace.status_text_set(text)
        except (RuntimeError, AttributeError, TypeError):  # a window without a usable context
            continue


def flash(text: str, level: str = "INFO") -> None:
    """Show ``text`` in the status bar for a few seconds (a job's end: its result, or what failed and what to
    do), whether or not an operator is still running. Background mode (tests, scripts): the log only."""
    log.log(logging.ERROR if level == "ERROR" else logging.INFO, "%s", text)
    if bpy.app.background:
        return
    _flash["token"] += 1
    token = _flash["token"]
    _status_bar(("DeepExpr error: " if level == "ERROR" else "DeepExpr: ") + text)

    def clear() -> None:
        if _flash["token"] == token:
            _status_bar(None)

    bpy.app.timers.register(clear, first_interval=FLASH_SECONDS)


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
