"""Backend errors in plain words: what failed and what to do (no protocol words reach the user).

Plain Python (no ``bpy``). ``explain(err, what)`` turns a ``client.BackendError`` (its ``name`` is the
protocol's error name) into one or two sentences for the status bar and the panel.
"""

from __future__ import annotations

# What to say for each protocol error; "{detail}" is the backend's own message, kept where it helps.
HINTS: dict[str, str] = {
    "NO_FACE": "No face was found in the image. Use a photo or frame where one face is large, frontal and well lit.",
    "INVALID_IMAGE": "The image cannot be read ({detail}). Choose a PNG or JPEG file.",
    "IMAGE_TOO_LARGE": "The image is too large ({detail}). Scale it down and try again.",
    "MODEL_MISSING": "A model of the backend is missing ({detail}). Reinstall the backend (make setup) or set "
    "its Backend Python in the add-on preferences.",
    "MODEL_INVALID": "A model of the backend cannot be loaded ({detail}). Reinstall the backend (make setup).",
    "LIBRARY_INVALID": "The pose library cannot be used: {detail}. Rebuild it (Build library from rig) or choose "
    "another library.",
    "CAPTURE_FAILED": "The camera or video cannot be read ({detail}). Check the webcam index or the video file.",
    "MESSAGE_TOO_LARGE": "Too many images at once. Use a video, or a folder with fewer images.",
    "SERVER_NOT_INITIALIZED": "The backend is still starting. Try again in a moment.",
    "SHUTTING_DOWN": "The backend is shutting down. Try again: it restarts by itself.",
    "BACKEND_UNAVAILABLE": "The backend is not running ({detail}). It restarts by itself on your next action; if "
    "it keeps stopping, check Backend Python in the add-on preferences and the backend log.",
    "INVALID_PARAMS": "The add-on sent the backend a request it refused ({detail}). This is a bug: please report it "
    "with the backend log.",
    "METHOD_NOT_FOUND": "The backend is too old for this add-on ({detail}). Update the backend (make setup).",
    "INVALID_REQUEST": "The backend refused the request ({detail}). Update the add-on and the backend together.",
}
DEFAULT_HINT = "The backend failed ({detail}). See the backend log in the extension's user folder (logs/)."


def explain(err: Exception, what: str) -> str:
    """``"<what> failed. <plain reason and what to do>"`` for a backend error (or any exception)."""
    name = getattr(err, "name", "")
    detail = str(err).strip().rstrip(".") or name or type(err).__name__
    return f"{what} failed. " + HINTS.get(name, DEFAULT_HINT).format(detail=detail)
