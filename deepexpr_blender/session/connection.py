"""The add-on's one backend connection: the client, the timer that drains it on Blender's main thread, and
the backend's status line (kept true: a backend that exits is shown as stopped until it runs again)."""

from __future__ import annotations

import logging
import os

import bpy

from .. import paths, prefs, status
from ..client import BackendClient, BackendError, find_project_python
from ..core import protocol

log = logging.getLogger(__name__)

DRAIN_INTERVAL = 0.1

_client: BackendClient | None = None
_shown = {"state": ""}  # what the backend status line last said: "", "running" or "exited"


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
    threads = p.threads if p else prefs.default_threads()
    wanted = (python, device, level, threads)
    if _client is None or (_client.python, _client.device, _client.log_level, _client.threads) != wanted:
        if _client is not None:
            _client.stop()
        log_file = os.path.join(paths.user_dir("logs"), "backend.log")
        _client = BackendClient(python, device=device, log_level=level, log_file=log_file, threads=threads)
        _shown["state"] = ""
    return _client


def require_backend() -> BackendClient:
    """The client, or a clear error right away when the backend's interpreter is not there."""
    client = get_client()
    if not client.python or not os.path.isfile(client.python):
        raise BackendError(
            f"DeepExpr backend Python not found ({client.python or 'not set'}). Set Backend Python in "
            "the add-on preferences to the project's .venv/bin/python.",
            protocol.BACKEND_UNAVAILABLE,
        )
    return client


def cancel(request_id: int) -> None:
    """Ask the backend to cancel a request (its answer, CANCELLED or the result, still comes)."""
    if _client is not None and request_id >= 0:
        _client.cancel(request_id)


def drain() -> int:
    """Run the callbacks of everything the backend sent (main thread), then keep the backend status line
    true. Tests call this directly (timers do not fire when bpy runs as a module)."""
    if _client is None:
        return 0
    try:
        n = _client.drain()
    except Exception:  # callbacks are guarded by their jobs; this is the last net, the timer must live on
        log.exception("DeepExpr: a backend callback failed")
        n = 0
    watch_backend()
    return n


def ready_text(info: dict) -> tuple[str, str | None]:
    """(status line, error or None) for a backend that answered ``initialize``."""
    missing = [k for k, v in info.get("models", {}).items() if not v.get("loaded")]
    threads = info.get("threads")
    count = f", {threads} thread{'s' if threads != 1 else ''}" if threads else ""
    text = f"Backend ready ({info.get('device')}{count})"
    if missing:
        return text, (f"Models missing: {', '.join(missing)}. Reinstall the backend (make setup); see the backend log.")
    return text, None


def watch_backend() -> None:
    """A backend that exited is shown as stopped (with what to do); one that runs again, as ready."""
    c = _client
    if c is None:
        return
    if c.proc is not None and not c.alive:
        if _shown["state"] != "exited":
            _shown["state"] = "exited"
            status.backend["info"] = None
            status.set_backend(
                "Backend stopped",
                f"The backend stopped ({c.last_error or 'it exited'}). It restarts by itself on your next action "
                "(or press the refresh button). If it keeps stopping, check Backend Python in the add-on "
                "preferences and the backend log.",
            )
    elif c.alive and c.info is not None and _shown["state"] != "running":
        _shown["state"] = "running"
        status.backend["info"] = c.info
        status.set_backend(*ready_text(c.info))


def _timer() -> float:
    if drain():
        status.redraw()
    return DRAIN_INTERVAL


def check_backend() -> None:
    """Start (or restart) the backend; the result lands in ``status.backend``."""
    client = get_client()

    def ready(info: dict) -> None:
        _shown["state"] = "running"
        status.backend["info"] = info
        status.set_backend(*ready_text(info))

    def failed(err: BackendError) -> None:
        status.backend["info"] = None
        status.set_backend(
            "Backend failed",
            f"{err}. Check the Backend Python in the preferences "
            "(the project's .venv/bin/python) and the log in the extension's user folder.",
        )

    try:
        status.backend["info"] = None
        status.set_backend("Starting the backend...")
        _shown["state"] = ""
        client.spawn(ready, failed)
    except BackendError as err:
        failed(err)


@bpy.app.handlers.persistent
def _on_load(*_args) -> None:
    """Another .blend: answers still on their way belong to the old file (the jobs end in ``jobs``)."""
    if _client is not None:
        _client.drop_callbacks()


def start() -> None:
    """Install the drain timer and the file-load handler (idempotent)."""
    if _on_load not in bpy.app.handlers.load_pre:
        bpy.app.handlers.load_pre.append(_on_load)
    if not bpy.app.timers.is_registered(_timer):
        bpy.app.timers.register(_timer, first_interval=DRAIN_INTERVAL, persistent=True)


def stop() -> None:
    """Remove the timer and handler and stop the backend."""
    global _client
    if _on_load in bpy.app.handlers.load_pre:
        bpy.app.handlers.load_pre.remove(_on_load)
    if bpy.app.timers.is_registered(_timer):
        bpy.app.timers.unregister(_timer)
    if _client is not None:
        _client.stop()
        _client = None
    _shown["state"] = ""
