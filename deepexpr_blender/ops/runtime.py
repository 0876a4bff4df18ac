"""The add-on's one backend client, the timer that drains it on Blender's main thread, and status text."""

from __future__ import annotations

import logging
import os

import bpy

from ..client import BackendClient, BackendError, find_project_python

log = logging.getLogger(__name__)

ADDON = __package__.rsplit(".", 1)[0]  # the add-on's package (works installed as an extension or from source)
DRAIN_INTERVAL = 0.1

_client: BackendClient | None = None
status = {"text": "Backend not started", "error": None, "info": None}


def prefs():
    addon = bpy.context.preferences.addons.get(ADDON)
    return addon.preferences if addon else None


def backend_python() -> str:
    p = prefs()
    chosen = bpy.path.abspath(p.python) if p and p.python else ""
    return chosen or find_project_python() or ""


def get_client() -> BackendClient:
    """The client, (re)made when the preferences changed. Starting the process happens on first request."""
    global _client
    p = prefs()
    python, device = backend_python(), (p.device if p else "auto")
    level = p.log_level if p else "WARNING"
    if _client is None or (_client.python, _client.device, _client.log_level) != (python, device, level):
        if _client is not None:
            _client.stop()
        log_file = os.path.join(user_dir("logs"), "backend.log")
        _client = BackendClient(python, device=device, log_level=level, log_file=log_file)
    return _client


def require_backend() -> BackendClient:
    """The client, or a clear error right away when the backend's interpreter is not there."""
    client = get_client()
    if not client.python or not os.path.isfile(client.python):
        raise BackendError(
            f"DeepExpr backend Python not found ({client.python or 'not set'}). Set Backend Python in "
            "the add-on preferences to the project's .venv/bin/python."
        )
    return client


def user_dir(*parts: str) -> str:
    """Writable folder of the extension (never inside the add-on folder)."""
    try:
        base = bpy.utils.extension_path_user(ADDON, create=True)
    except (ValueError, AttributeError):  # running as a legacy add-on: fall back to Blender's user config
        base = os.path.join(bpy.utils.user_resource("CONFIG"), "deepexpr")
    path = os.path.join(base, *parts)
    os.makedirs(path, exist_ok=True)
    return path


def output_dir(*parts: str) -> str:
    """Next to the .blend (//deepexpr/...) when saved, else the extension's user folder."""
    if bpy.data.filepath:
        path = os.path.join(bpy.path.abspath("//deepexpr"), *parts)
        os.makedirs(path, exist_ok=True)
        return path
    return user_dir("output", *parts)


def redraw() -> None:
    wm = bpy.context.window_manager
    for window in getattr(wm, "windows", []):
        for area in window.screen.areas:
            area.tag_redraw()


def drain() -> int:
    """Run the callbacks of everything the backend sent (main thread). Tests call this directly."""
    if _client is None:
        return 0
    try:
        return _client.drain()
    except Exception:  # a failing callback must not kill the timer
        log.exception("DeepExpr: a backend callback failed")
        return 0


def _timer() -> float:
    if drain():
        redraw()
    return DRAIN_INTERVAL


def set_status(text: str, error: str | None = None) -> None:
    status["text"], status["error"] = text, error
    redraw()


def check_backend() -> None:
    """Start (or restart) the backend; the result lands in ``status``."""
    client = get_client()

    def ready(info: dict) -> None:
        status["info"] = info
        models = ", ".join(f"{k} {'ok' if v.get('loaded') else 'missing'}" for k, v in info.get("models", {}).items())
        set_status(
            f"Backend {info.get('backend_version')} on {info.get('device')} (protocol "
            f"{info.get('protocol_version')}); models: {models}"
        )

    def failed(err: BackendError) -> None:
        status["info"] = None
        set_status(
            "Backend failed",
            f"{err}. Check the Backend Python in the preferences "
            "(the project's .venv/bin/python) and the log in the extension's user folder.",
        )

    try:
        set_status("Starting the backend...")
        client.spawn(ready, failed)
    except BackendError as err:
        failed(err)


@bpy.app.handlers.persistent
def _on_load(*_args) -> None:
    """Another .blend: answers still on their way belong to the old file; nothing is busy in the new one."""
    if _client is not None:
        _client.drop_callbacks()
    for scene in bpy.data.scenes:
        if hasattr(scene, "deepexpr") and scene.deepexpr.busy:
            scene.deepexpr.busy = False
            scene.deepexpr.status = "Interrupted (file loaded)"


def register() -> None:
    if _on_load not in bpy.app.handlers.load_pre:
        bpy.app.handlers.load_pre.append(_on_load)
    if _on_load not in bpy.app.handlers.load_post:
        bpy.app.handlers.load_post.append(_on_load)
    if not bpy.app.timers.is_registered(_timer):
        bpy.app.timers.register(_timer, first_interval=DRAIN_INTERVAL, persistent=True)


def unregister() -> None:
    global _client
    for handlers in (bpy.app.handlers.load_pre, bpy.app.handlers.load_post):
        if _on_load in handlers:
            handlers.remove(_on_load)
    if bpy.app.timers.is_registered(_timer):
        bpy.app.timers.unregister(_timer)
    if _client is not None:
        _client.stop()
        _client = None
