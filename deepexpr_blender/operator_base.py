"""What every DeepExpr operator shares: reporting user errors the Blender way, saying why a button is
disabled, and the modal loop that watches a background job (progress, status bar, Esc where it cancels)."""

from __future__ import annotations

import logging
import time

import bpy

from . import jobs
from .client import BackendError
from .core.library_format import LibraryError
from .errors import UserError
from .session import connection

log = logging.getLogger(__name__)

# Errors a user can act on: reported in the status bar, the operator cancelled. Anything else is a bug.
USER_ERRORS = (BackendError, UserError, LibraryError, OSError)

CANCEL_GRACE = 10.0  # seconds after Esc before a job whose backend does not confirm is ended anyway


def refuse(cls, why: str) -> bool:
    """For ``poll()``: say why the button is disabled (its tooltip), and disable it."""
    cls.poll_message_set(why)
    return False


def busy_reason(props) -> str:
    return f"DeepExpr is busy ({props.job or 'working'}): wait for it" + (
        ", or press Esc to cancel it" if props.cancellable else ""
    )


def has_target(cls, context) -> bool:
    """For ``poll()``: a target character is picked (the tooltip says where)."""
    if context.scene.deepexpr.target is None:
        return refuse(cls, "Pick a Target first: the character to key (Poses panel)")
    return True


def scene_is_idle(cls, context) -> bool:
    """For ``poll()``: a scene that is not busy with another DeepExpr job (the tooltip says which)."""
    if context.scene is None:
        return False
    if context.scene.deepexpr.busy:
        return refuse(cls, busy_reason(context.scene.deepexpr))
    return True


class ReportingOperator:
    """Mix-in: ``fail`` reports an error and cancels; ``start_workflow`` starts an asynchronous workflow."""

    def fail(self, err: Exception) -> set[str]:
        self.report({"ERROR"}, str(err))
        return {"CANCELLED"}

    def start_workflow(self, context, work) -> set[str]:
        """Start ``work(scene)`` (an asynchronous workflow); a user error is reported, nothing is left busy."""
        try:
            work(context.scene)
        except USER_ERRORS as err:
            return self.fail(err)
        return {"FINISHED"}


class RequestModal(ReportingOperator):
    """Mix-in for an operator over one background job (``start_job(context)`` returns a ``jobs.Job``).

    With a window, the operator stays modal until the job ends: it drains the backend, shows progress in the
    status bar and the cursor, and Esc cancels when the job can be cancelled. The job itself guarantees that
    it ends (see ``jobs``); the loop also ends on its own errors. Without a window (scripts, tests) the job is
    started and the caller drains."""

    _timer = None
    job: jobs.Job | None = None
    blocks_input = False  # True: other events wait until the job ends (it holds the scene in a temporary state)

    def start_job(self, context) -> jobs.Job:
        raise NotImplementedError

    def advance(self, context) -> None:
        """One step on each timer tick: by default, run what the backend sent."""
        connection.drain()

    def cancel_work(self, job: jobs.Job) -> None:
        """Esc: by default, ask the backend to cancel the job's request."""
        connection.cancel(job.request_id)

    def execute(self, context):
        try:
            self.job = self.start_job(context)
        except USER_ERRORS as err:
            return self.fail(err)
        if bpy.app.background or context.window is None:  # no event loop: the caller drains
            return {"FINISHED"}
        wm = context.window_manager
        self._timer = wm.event_timer_add(0.1, window=context.window)
        wm.modal_handler_add(self)
        wm.progress_begin(0, 1)
        self._show(context)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        job = self.job
        try:
            if event.type == "ESC" and event.value == "PRESS" and job.cancellable and not job.done:
                self._cancel(job)
                return {"RUNNING_MODAL"}
            if event.type == "TIMER":
                self.advance(context)
                if job.cancel_sent_at is not None and not job.done:
                    if time.monotonic() - job.cancel_sent_at > CANCEL_GRACE:
                        job.end_cancelled(f"{job.title} cancelled (the backend did not confirm in time)")
                if job.done:
                    return self.cleanup(context)
                self._show(context)
        except Exception as exc:  # never leave a modal loop running on our own error
            log.exception("DeepExpr: the modal loop of %s failed", job.title)
            job.fail(f"{job.title} failed: {type(exc).__name__}: {exc}. See the system console.")
            return self.cleanup(context)
        return {"RUNNING_MODAL"} if self.blocks_input and event.type not in {"TIMER", "MOUSEMOVE"} else {"PASS_THROUGH"}

    def _cancel(self, job: jobs.Job) -> None:
        if job.cancel_sent_at is None:
            job.cancel_sent_at = time.monotonic()
            self.cancel_work(job)
            job.say(f"Cancelling {job.title.lower()}...")
            if getattr(job, "cancel_ends_now", False):  # nothing to undo: end now, ignore the late answer
                job.end_cancelled()

    def _show(self, context) -> None:
        p = self.job.props()
        if p is None:
            return
        context.window_manager.progress_update(p.progress)
        tail = "  (Esc to cancel)" if self.job.cancellable and self.job.cancel_sent_at is None else ""
        context.workspace.status_text_set(f"DeepExpr: {p.status}{tail}")

    def cleanup(self, context) -> set[str]:
        wm = context.window_manager
        if self._timer is not None:
            wm.event_timer_remove(self._timer)
            self._timer = None
        wm.progress_end()  # the status bar keeps the job's last words for a while (status.flash)
        job = self.job
        p = job.props()
        text = p.status if p is not None else (job.error or f"{job.title} ended")
        self.report({"ERROR"} if job.error else ({"WARNING"} if job.cancelled else {"INFO"}), text)
        return {"FINISHED"}  # keys made before an error or a cancel stay, as one undo step
