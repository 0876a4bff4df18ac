"""The add-on's one backend connection: the client, the timer that drains it on Blender's main thread, and
the backend's status."""

from __future__ import annotations

import logging
import os

import bpy

from .. import paths, prefs, status
from ..client import BackendClient, BackendError, find_project_python

log = logging.getLogger(__name__)

DRAIN_INTERVAL = 0.1

_client: BackendClient | None = None


def backend_python() -> str:
    p = prefs.get()
    chosen = bpy.path.abspath(p.python) if p and p.python else ""
    return chosen or find_project_python() or ""


def get_client() -> BackendClient:
    """The client, (re)made when the preferences changed. Starting the process happens on first request."""
    global _client
    p = prefs.get()
    python, device = backend_python(), (p.device if p else "auto")
    level = p.log_level if p else "WARNING"
    if _client is None or (_client.python, _client.device, _client.log_level) != (python, device, level):
        if _client is not None:
            _client.stop()
        log_file = os.path.join(paths.user_dir("logs"), "backend.log")
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
        status.redraw()
    return DRAIN_INTERVAL


def check_backend() -> None:
    """Start (or restart) the backend; the result lands in ``status.backend``."""
    client = get_client()

    def ready(info: dict) -> None:
        status.backend["info"] = info
        models = ", ".join(f"{k} {'ok' if v.get('loaded') else 'missing'}" for k, v in info.get("models", {}).items())
        status.set_backend(
            f"Backend {info.get('backend_version')} on {info.get('device')} (protocol "
            f"{info.get('protocol_version')}); models: {models}"
        )

    def failed(err: BackendError) -> None:
        status.backend["info"] = None
        status.set_backend(
            "Backend failed",
            f"{err}. Check the Backend Python in the preferences "
            "(the project's .venv/bin/python) and the log in the extension's user folder.",
        )

    try:
        status.set_backend("Starting the backend...")
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


def start() -> None:
    """Install the drain timer and the file-load handlers (idempotent)."""
    if _on_load not in bpy.app.handlers.load_pre:
        bpy.app.handlers.load_pre.append(_on_load)
    if _on_load not in bpy.app.handlers.load_post:
        bpy.app.handlers.load_post.append(_on_load)
    if not bpy.app.timers.is_registered(_timer):
        bpy.app.timers.register(_timer, first_interval=DRAIN_INTERVAL, persistent=True)


def stop() -> None:
    """Remove the timer and handlers and stop the backend."""
    global _client
    for handlers in (bpy.app.handlers.load_pre, bpy.app.handlers.load_post):
        if _on_load in handlers:
            handlers.remove(_on_load)
    if bpy.app.timers.is_registered(_timer):
        bpy.app.timers.unregister(_timer)
    if _client is not None:
        _client.stop()
        _client = None
