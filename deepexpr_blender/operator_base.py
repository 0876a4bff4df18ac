"""What every DeepExpr operator shares: reporting user errors the Blender way, and the modal loop that
watches a background request (progress in the status bar, Esc cancels)."""

from __future__ import annotations

from .client import BackendError
from .core.library_format import LibraryError
from .errors import UserError
from .session import connection

# Errors a user can act on: reported in the status bar, the operator cancelled. Anything else is a bug.
USER_ERRORS = (BackendError, UserError, LibraryError, OSError)


class ReportingOperator:
    """Mix-in: ``fail`` reports an error and cancels; ``start_workflow`` runs an asynchronous workflow."""

    def fail(self, err: Exception) -> set[str]:
        self.report({"ERROR"}, str(err))
        return {"CANCELLED"}

    def start_workflow(self, context, work) -> set[str]:
        """Start ``work(scene)`` (an asynchronous workflow); a user error is reported and clears ``busy``."""
        try:
            work(context.scene)
        except USER_ERRORS as err:
            context.scene.deepexpr.busy = False
            return self.fail(err)
        return {"FINISHED"}


class RequestModal(ReportingOperator):
    """Mix-in for a modal operator over one background job: ``start_job(scene)`` returns an object with
    ``request_id`` and ``done``; the loop drains the backend, shows progress, Esc cancels the request."""

    _timer = None
    job = None

    def start_job(self, scene):
        raise NotImplementedError

    def execute(self, context):
        try:
            self.job = self.start_job(context.scene)
        except USER_ERRORS as err:
            context.scene.deepexpr.busy = False
            return self.fail(err)
        wm = context.window_manager
        self._timer = wm.event_timer_add(0.1, window=context.window)
        wm.modal_handler_add(self)
        wm.progress_begin(0, 1)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        props = context.scene.deepexpr
        if event.type == "ESC":
            connection.get_client().cancel(self.job.request_id)
            self.report({"WARNING"}, "Cancelling...")
        if event.type == "TIMER":
            connection.drain()
            context.window_manager.progress_update(props.progress)
            context.workspace.status_text_set(f"DeepExpr: {props.status}  (Esc to cancel)")
            if self.job.done:
                return self.cleanup(context)
        return {"PASS_THROUGH"}

    def cleanup(self, context) -> set[str]:
        wm = context.window_manager
        wm.event_timer_remove(self._timer)
        wm.progress_end()
        context.workspace.status_text_set(None)
        self.report({"INFO"}, context.scene.deepexpr.status)
        return {"FINISHED"}
