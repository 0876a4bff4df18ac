"""Backend supervision (stdlib only, no bpy): start the backend child process, talk JSON-RPC to it without
blocking, and keep it alive.

Threads: a reader thread parses frames from the child's stdout onto a ``queue.Queue``; the main thread
calls ``drain()`` (from a ``bpy.app.timers`` callback in Blender; directly in tests) to run callbacks.
Nothing here touches bpy, so callbacks run where the caller decides.

A crashed backend is noticed (its stdout closes), every pending request fails with a clear error, and the
next request starts a new process. A stopped or hung one is noticed too: while a request is open the backend
sends ``$/heartbeat`` every 2 s, and after ``stall_timeout`` seconds of silence (``start_timeout`` before
its first message) the client kills it, fails the open requests with ``BACKEND_UNAVAILABLE`` (``data.reason``
"hung") and the next request -- or ``restart()`` -- starts a new one. ``stop()`` sends shutdown/exit,
waits, and kills if it must: no zombies.
"""

from __future__ import annotations

import itertools
import logging
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .core import protocol as P

log = logging.getLogger(__name__)

Callback = Callable[[Any], None]


class BackendError(Exception):
    """The backend could not be started, died, or answered with an error. ``code``/``name`` as in protocol.py."""

    def __init__(self, message: str, code: int = P.INTERNAL_ERROR, data: Any = None):
        super().__init__(message)
        self.code = code
        self.data = data or {}
        self.name = P.ERROR_NAMES.get(code, "ERROR")


@dataclass
class Pending:
    method: str
    on_result: Callback | None = None
    on_error: Callable[[BackendError], None] | None = None
    on_progress: Callback | None = None
    sent: float = field(default_factory=time.monotonic)


def find_project_python(start: str | None = None) -> str | None:
    """The project's virtual-environment interpreter, when the add-on runs from the project checkout."""
    here = os.path.dirname(os.path.abspath(start or __file__))
    for root in (os.path.dirname(here), os.path.dirname(os.path.dirname(here))):
        for cand in (
            os.path.join(root, ".venv", "bin", "python"),
            os.path.join(root, ".venv", "Scripts", "python.exe"),
        ):
            if os.path.isfile(cand):
                return cand
    return None


class BackendClient:
    def __init__(
        self,
        python: str,
        device: str = "auto",
        log_level: str = "WARNING",
        log_file: str | None = None,
        extra_args: tuple[str, ...] = (),
        env: dict | None = None,
        threads: int | None = None,
        stall_timeout: float = 30.0,
        start_timeout: float = 120.0,
    ):
        self.python, self.device, self.log_level, self.log_file = python, device, log_level, log_file
        self.threads = threads  # CPU threads the backend may use (None: its default, 1)
        self.extra_args = tuple(extra_args)
        self.env = env
        self.proc: subprocess.Popen | None = None
        self.info: dict | None = None  # the initialize result
        self.last_error: str | None = None
        self.restarts = 0
        self._ids = itertools.count(1)
        self._pending: dict[int, Pending] = {}
        self._queue: queue.Queue = queue.Queue()
        self._write_lock = threading.Lock()
        self._stderr_tail: list[str] = []
        self._eof_proc: subprocess.Popen | None = None
        self.stall_timeout = stall_timeout  # seconds of silence, with a request open, that mean "hung"
        self.start_timeout = start_timeout  # the same before a new backend's first message (imports, models)
        self._last_heard = time.monotonic()  # when the backend last sent anything (or the clock was reset)
        self._heard = False  # whether this process has sent anything yet

    # ------------------------------------------------------------------ lifecycle
    @property
    def alive(self) -> bool:
        # stdout's end is authoritative: a dying process closes its pipes a moment before it can be reaped.
        return self.proc is not None and self.proc is not self._eof_proc and self.proc.poll() is None

    def command(self) -> list[str]:
        cmd = [self.python, "-m", "backend.cli", "--device", self.device, "--log-level", self.log_level]
        if self.log_file:
            cmd += ["--log-file", self.log_file]
        serve = ["serve", "--stdio"] + (["--threads", str(self.threads)] if self.threads else [])
        return [*cmd, *self.extra_args, *serve]

    def spawn(self, on_ready: Callback | None = None, on_error: Callable[[BackendError], None] | None = None) -> None:
        """Start the backend and send ``initialize`` without waiting: ``on_ready(info)`` runs in ``drain()``.
        Requests sent right after are queued behind initialize by the backend, so nothing blocks."""
        self.stop()
        if not self.python or not os.path.isfile(self.python):
            raise BackendError(
                f"backend Python not found: {self.python!r}. Set it in the add-on preferences "
                "(the project's .venv/bin/python).",
                P.BACKEND_UNAVAILABLE,
            )
        try:
            self.proc = subprocess.Popen(
                self.command(),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=self.env,
                close_fds=True,
            )
        except OSError as exc:
            raise BackendError(f"cannot start the backend with {self.python}: {exc}", P.BACKEND_UNAVAILABLE) from None
        self._stderr_tail = []
        self._last_heard, self._heard = time.monotonic(), False
        threading.Thread(
            target=self._read_stdout, args=(self.proc,), daemon=True, name="deepexpr-client-reader"
        ).start()
        threading.Thread(
            target=self._read_stderr, args=(self.proc,), daemon=True, name="deepexpr-client-stderr"
        ).start()

        def ready(info: dict) -> None:
            self.info = info
            self.last_error = None
            if on_ready:
                on_ready(info)

        def failed(err: BackendError) -> None:
            self.last_error = str(err)
            if on_error:
                on_error(err)

        self.request(
            "initialize",
            {"protocolVersion": P.PROTOCOL_VERSION, "parentPid": os.getpid(), "options": {"device": self.device}},
            ready,
            failed,
            _autostart=False,
        )

    def start(self, timeout: float = 60.0) -> dict:
        """Start the backend and wait for ``initialize`` (for scripts and tests; the UI uses ``spawn``)."""
        result: dict = {}
        self.spawn(lambda r: result.setdefault("ok", r), lambda e: result.setdefault("err", e))
        deadline = time.monotonic() + timeout
        while not result and time.monotonic() < deadline:
            self.drain(block=0.05)
        if "ok" in result:
            return result["ok"]
        err = result.get("err") or BackendError(f"the backend did not answer initialize within {timeout:.0f} s")
        self.last_error = str(err)
        self.stop()
        raise err

    def restart(self, on_ready: Callback | None = None, on_error: Callable[[BackendError], None] | None = None) -> None:
        """Stop the backend (killing it if it does not stop) and start a new one (what a UI offers after a
        BACKEND_UNAVAILABLE error)."""
        self.restarts += 1
        self.spawn(on_ready, on_error)

    def stop(self, timeout: float = 5.0) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            try:
                with self._write_lock:
                    proc.stdin.write(P.encode(P.request(next(self._ids), "shutdown")))
                    proc.stdin.write(P.encode(P.notification("exit")))
                    proc.stdin.flush()
            except (OSError, ValueError):
                pass
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            try:
                stream.close()
            except OSError:
                pass
        self._fail_all(BackendError("the backend was stopped"))

    # ------------------------------------------------------------------ requests
    def request(
        self,
        method: str,
        params: dict | None = None,
        on_result: Callback | None = None,
        on_error: Callable[[BackendError], None] | None = None,
        on_progress: Callback | None = None,
        _autostart: bool = True,
    ) -> int:
        """Send a request; callbacks run inside ``drain()``. Starts (or restarts) the backend if needed."""
        if _autostart and not self.alive:
            if self.info is not None:
                self.restarts += 1
                log.warning("the backend is not running (%s); restarting it", self.last_error or "exited")
            try:
                self.spawn()
            except BackendError as err:
                if on_error is None:
                    raise
                on_error(err)
                return -1
        msg_id = next(self._ids)
        try:
            data = P.encode(P.request(msg_id, method, params))
        except (ValueError, TypeError, RecursionError) as exc:  # UnicodeEncodeError is a ValueError
            err = BackendError(
                f"{method}: the request cannot be sent as JSON ({str(exc)[:200]}); is a path not valid UTF-8 "
                "text? Rename the file or folder.",
                P.INVALID_PARAMS,
            )
            if on_error is None:
                raise err from None
            on_error(err)
            return -1
        if len(data) > P.MAX_MESSAGE_BYTES:
            err = BackendError(
                f"{method}: the request is {len(data) // 1024} KiB, over the protocol's "
                f"{P.MAX_MESSAGE_BYTES // 1024} KiB limit (fewer images per batch?)",
                P.MESSAGE_TOO_LARGE,
            )
            if on_error is None:
                raise err
            on_error(err)
            return -1
        if not self._pending:  # the silence clock starts when work starts, not at the last answer
            self._last_heard = time.monotonic()
        self._pending[msg_id] = Pending(method, on_result, on_error, on_progress)
        try:
            with self._write_lock:
                self.proc.stdin.write(data)
                self.proc.stdin.flush()
        except (OSError, ValueError, AttributeError) as exc:
            self._pending.pop(msg_id, None)
            err = BackendError(f"cannot send {method} to the backend: {exc}")
            if on_error:
                on_error(err)
            else:
                raise err from None
        return msg_id

    def cancel(self, msg_id: int) -> None:
        if self.alive:
            with self._write_lock:
                try:
                    self.proc.stdin.write(P.encode(P.notification("$/cancelRequest", {"id": msg_id})))
                    self.proc.stdin.flush()
                except (OSError, ValueError):
                    pass

    def drop_callbacks(self) -> None:
        """Cancel every request in flight and forget its callbacks (their owner went away)."""
        for msg_id in list(self._pending):
            self.cancel(msg_id)
        self._pending.clear()

    @property
    def busy(self) -> bool:
        return bool(self._pending)

    def call(self, method: str, params: dict | None = None, timeout: float = 120.0) -> Any:
        """Blocking request (for scripts and tests; operators use ``request`` with callbacks)."""
        box: dict = {}
        self.request(method, params, lambda r: box.setdefault("r", r), lambda e: box.setdefault("e", e))
        deadline = time.monotonic() + timeout
        while not box and time.monotonic() < deadline:
            self.drain(block=0.05)
        if "e" in box:
            raise box["e"]
        if "r" not in box:
            tail = "".join(self._stderr_tail[-5:]).strip()[-500:]
            code = self.proc.poll() if self.proc else "no process"
            raise BackendError(
                f"{method} timed out after {timeout:.0f} s (backend alive: {self.alive}, exit {code}; "
                f"stderr: {tail or 'empty'})"
            )
        return box["r"]

    # ------------------------------------------------------------------ main-thread side
    def drain(self, block: float = 0.0) -> int:
        """Run the callbacks of every message that arrived, and notice a stopped or hung backend. Returns how
        many messages were handled."""
        n = 0
        while True:
            try:
                item = self._queue.get(timeout=block) if block and n == 0 else self._queue.get_nowait()
            except queue.Empty:
                self._check_stall()
                return n
            n += 1
            kind, payload = item
            if kind == "dropped":
                if self._pending:
                    oldest = min(self._pending)
                    p = self._pending.pop(oldest)
                    if p.on_error:
                        p.on_error(BackendError(f"{p.method}: the backend's answer was unreadable ({payload})"))
                continue
            if kind == "eof":
                if payload is self.proc:
                    self._eof_proc = payload
                    try:
                        payload.wait(0.5)  # reap it now that its pipes are closed
                    except subprocess.TimeoutExpired:
                        payload.kill()
                        payload.wait()
                    code = payload.poll()
                    tail = "".join(self._stderr_tail[-5:]).strip()
                    self.last_error = f"the backend exited (code {code})" + (f": {tail[-300:]}" if tail else "")
                    self._fail_all(BackendError(self.last_error, P.BACKEND_UNAVAILABLE))
                continue
            self._dispatch(payload)

    def _check_stall(self) -> None:
        proc = self.proc
        if not self._pending or proc is None or not self.alive:
            return
        quiet = time.monotonic() - self._last_heard
        limit = self.stall_timeout if self._heard else self.start_timeout
        if quiet <= limit:
            return
        self.proc = None  # the next request starts a new backend
        proc.kill()  # SIGKILL reaches a stopped process too
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            log.error("the hung backend (pid %d) did not die", proc.pid)
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            try:
                stream.close()
            except OSError:
                pass
        self.last_error = (
            f"the backend (pid {proc.pid}) did not answer for {quiet:.0f} s: it was stopped or hung, so it was "
            "ended; the next request starts a new one"
        )
        log.error("%s", self.last_error)
        self._fail_all(BackendError(self.last_error, P.BACKEND_UNAVAILABLE, {"reason": "hung"}))

    def _dispatch(self, msg: dict) -> None:
        if "id" not in msg or msg.get("id") is None:
            if msg.get("method") == "$/progress":
                params = msg.get("params") or {}
                p = self._pending.get(params.get("id"))
                if p and p.on_progress:
                    p.on_progress(params)
            return
        p = self._pending.pop(msg["id"], None)
        if p is None:
            return
        if "error" in msg:
            e = msg["error"]
            err = BackendError(e.get("message", "error"), e.get("code", P.INTERNAL_ERROR), e.get("data"))
            if p.on_error:
                p.on_error(err)
            else:
                log.error("%s failed: %s", p.method, err)
        elif p.on_result:
            p.on_result(msg.get("result"))

    def _fail_all(self, err: BackendError) -> None:
        pending, self._pending = self._pending, {}
        for p in pending.values():
            if p.on_error:
                p.on_error(err)

    # ------------------------------------------------------------------ reader threads
    def _read_stdout(self, proc: subprocess.Popen) -> None:
        while True:
            try:
                body = P.read_frame(proc.stdout, P.MAX_REPLY_BYTES)
            except P.FramingError as exc:
                log.error("backend stream error: %s", exc)
                if exc.recoverable:  # a dropped answer: fail the oldest request (answers come in order)
                    self._queue.put(("dropped", str(exc)))
                    continue
                body = None
            except (OSError, ValueError):
                body = None
            if body is None:
                self._queue.put(("eof", proc))
                return
            if proc is self.proc:
                self._last_heard, self._heard = time.monotonic(), True
            try:
                self._queue.put(("msg", P.decode(body)))
            except P.FramingError as exc:
                log.error("backend sent bad JSON: %s", exc)

    def _read_stderr(self, proc: subprocess.Popen) -> None:
        for raw in iter(proc.stderr.readline, b""):
            line = raw.decode("utf-8", "replace")
            self._stderr_tail = (self._stderr_tail + [line])[-50:]
            sys.stderr.write("[deepexpr-backend] " + line)
