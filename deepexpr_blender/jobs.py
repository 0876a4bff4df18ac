"""Background work on a scene (``Scene.deepexpr``: busy, job, status, error, progress) with one guarantee:
whatever happens (success, a backend error, a crash of the backend, an exception in our own callback, the
scene renamed or deleted, another file opened), the job ends, ``busy`` is cleared, the modal operator
watching it stops, and the user reads what happened in plain words in the panel and the status bar.

Callbacks run later on the main thread (the drain timer), so a job finds its scene again by its
``session_uid`` (renaming does not lose it) and every callback it hands to the client goes through
``Job.guard``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import bpy

from . import messages, status
from .core.library_format import LibraryError
from .errors import UserError

log = logging.getLogger(__name__)

# Jobs not yet ended, so a file load can end them (their callbacks are dropped with the old file).
ACTIVE: dict[int, Job] = {}


def scene(name: str):
    """The scene called ``name``, or None when it was renamed or deleted meanwhile (jobs find theirs by uid)."""
    return bpy.data.scenes.get(name)


class Job:
    """One piece of background work for a scene. Subclasses set ``kind``, ``title``, ``cancellable``."""

    kind = "job"  # shown in Scene.deepexpr.job while running
    title = "The job"  # "<title> failed. ..." / "<title> cancelled"
    cancellable = False  # whether Esc cancels it (the panel says so only then)
    cancel_ends_now = False  # Esc ends it at once (nothing was changed yet; a late answer is ignored)

    def __init__(self, scene, text: str):
        self.scene_uid = scene.session_uid
        self.scene_name = scene.name
        self.request_id = -1
        self.done = False
        self.cancelled = False
        self.error: str | None = None
        self.cancel_sent_at: float | None = None
        p = scene.deepexpr
        p.busy, p.job, p.cancellable = True, self.kind, self.cancellable
        p.error, p.status, p.status_kind = "", text, "INFO"
        p.progress, p.progress_known = 0.0, False
        ACTIVE[id(self)] = self
        status.redraw()

    # ------------------------------------------------------------------ the scene
    def scene(self):
        """The job's scene (found by its session uid, so renaming it does not lose it), or None if deleted."""
        for sc in bpy.data.scenes:
            if sc.session_uid == self.scene_uid:
                return sc
        return bpy.data.scenes.get(self.scene_name)

    def props(self):
        sc = self.scene()
        return sc.deepexpr if sc is not None and hasattr(sc, "deepexpr") else None

    # ------------------------------------------------------------------ updates
    def progress(self, done: int, total: int, text: str) -> None:
        p = self.props()
        if p is not None and not self.done:
            p.progress, p.progress_known = done / max(total, 1), True
            p.status = text

    def indexing(self, p: dict) -> bool:
        """Show a ``$/progress`` of the backend indexing a new or changed library (``stage: "index"``, sent
        before any result of retrieve, retrieve_batch and live); True when ``p`` was one."""
        if p.get("stage") != "index":
            return False
        self.progress(p["done"], p["total"], f"Indexing the library: {p['done']} of {p['total']} poses")
        return True

    def say(self, text: str) -> None:
        p = self.props()
        if p is not None and not self.done:
            p.status = text

    # ------------------------------------------------------------------ endings (each exactly once)
    def finish(self, text: str, kind: str = "OK") -> None:
        """End the job: not busy, ``text`` in the panel (``kind``: OK, INFO or ERROR)."""
        if self.done:
            return
        self.done = True
        ACTIVE.pop(id(self), None)
        p = self.props()
        if p is not None:
            p.busy, p.job, p.cancellable, p.progress_known = False, "", False, False
            p.status, p.status_kind = text, kind
            if kind == "ERROR":
                p.error = text
        status.flash(text, kind)
        status.redraw()

    def fail(self, message: str) -> None:
        """End with an error (``message``: what failed and what to do), shown in the panel and status bar."""
        if self.done:
            return
        self.error = message
        self._cancel_request()
        self.finish(message, "ERROR")

    def end_cancelled(self, text: str = "") -> None:
        self.cancelled = True
        self.finish(text or f"{self.title} cancelled", "INFO")

    def backend_failed(self, err) -> None:
        """The ``on_error`` of the job's requests: cancelled, or a backend error in plain words."""
        if getattr(err, "name", "") == "CANCELLED":
            self.end_cancelled()
        else:
            self.fail(messages.explain(err, self.title))

    def _cancel_request(self) -> None:
        if self.request_id >= 0:
            from .session import connection

            connection.cancel(self.request_id)

    # ------------------------------------------------------------------ callbacks
    def guard(self, fn: Callable) -> Callable:
        """``fn`` as a callback that cannot leave the job hanging: answers after the job ended are ignored,
        and an exception ends the job with an error (and the traceback in the log)."""

        def guarded(*args, **kwargs):
            if self.done:
                return None
            try:
                return fn(*args, **kwargs)
            except (UserError, LibraryError) as exc:  # a problem the user can fix: say what and how
                self.fail(f"{self.title} failed. {exc}")
                return None
            except Exception as exc:  # our own bug or an unexpected scene state: end the job, say so
                log.exception("DeepExpr: %s: a callback failed", self.title)
                self.fail(
                    f"{self.title} failed: {type(exc).__name__}: {exc}. The job was stopped; the system console "
                    "has the details (please report them)."
                )
                return None

        return guarded

    @property
    def on_error(self) -> Callable:
        return self.guard(self.backend_failed)


def end_all(reason: str) -> None:
    """End every running job (another file was opened: their scenes and answers are gone)."""
    for job in list(ACTIVE.values()):
        job.cancelled = True
        job.finish(reason, "INFO")
    ACTIVE.clear()


@bpy.app.handlers.persistent
def _on_load_pre(*_args) -> None:
    end_all("Interrupted: another file was opened")


@bpy.app.handlers.persistent
def _on_load_post(*_args) -> None:
    """A file saved while a job ran comes back with ``busy`` set: nothing runs in it now."""
    for scene in bpy.data.scenes:
        p = getattr(scene, "deepexpr", None)
        if p is not None and p.busy:
            p.busy, p.job, p.cancellable, p.progress_known = False, "", False, False
            p.status, p.status_kind = "Interrupted (the file was saved while DeepExpr was working)", "INFO"


def register() -> None:
    if _on_load_pre not in bpy.app.handlers.load_pre:
        bpy.app.handlers.load_pre.append(_on_load_pre)
    if _on_load_post not in bpy.app.handlers.load_post:
        bpy.app.handlers.load_post.append(_on_load_post)


def unregister() -> None:
    for handlers, fn in ((bpy.app.handlers.load_pre, _on_load_pre), (bpy.app.handlers.load_post, _on_load_post)):
        if fn in handlers:
            handlers.remove(fn)
    ACTIVE.clear()
