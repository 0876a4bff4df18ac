"""JSON-RPC 2.0 over a byte stream (``Content-Length`` framing) -- the transport and lifecycle of
docs/protocol.md. The work methods come in as a ``MethodRegistry`` (``backend/app.py`` wires them).

Threads: a *reader* parses frames from stdin onto a queue and handles ``$/cancelRequest`` at once; the
*main* thread runs requests one at a time; a *heartbeat* sends ``$/heartbeat`` while a request runs; a
*watchdog* exits the process when the parent dies.
"""

from __future__ import annotations

import collections
import logging
import math
import os
import queue
import threading
import time
import traceback
from collections.abc import Callable
from typing import IO, Any

from deepexpr_blender.core import protocol as P

from . import __version__
from .errors import DeepExprError
from .rpc import MethodRegistry, RequestContext, is_text, valid_id

log = logging.getLogger(__name__)

_EOF = object()
HEARTBEAT_S = 2.0  # seconds between $/heartbeat notifications while a request runs
MAX_PID = 2**31 - 1  # pid_t; larger numbers would stop the parent watchdog with an OverflowError


class Server:
    def __init__(
        self,
        engine_factory: Callable[[dict], Any],
        methods: MethodRegistry,
        stdin: IO[bytes],
        stdout: IO[bytes],
        max_message_bytes: int = P.MAX_MESSAGE_BYTES,
    ):
        self.engine_factory = engine_factory
        self.methods = methods
        self.stdin, self.stdout = stdin, stdout
        self.max_message_bytes = max_message_bytes
        self.engine: Any = None
        self.state = "created"  # created -> initialized -> shutdown
        self.init_error: DeepExprError | None = None
        self._watchdog_started = False
        self.cancelled: set[Any] = set()  # ids of open requests the client cancelled
        self._open: collections.Counter = collections.Counter()  # ids of requests queued or running
        self._ids_lock = threading.Lock()  # guards cancelled and _open (reader thread vs main thread)
        self.client_gone = threading.Event()  # stdin ended: the running request stops at its next check
        self._running: Any = None  # the id of the request being handled, for the heartbeat
        self.heartbeat_s = HEARTBEAT_S
        self._stopped = threading.Event()
        self._write_lock = threading.Lock()
        self._queue: queue.Queue = queue.Queue()

    # ----------------------------------------------------------------- io
    def notify(self, method: str, params: dict) -> None:
        self.send(P.notification(method, params))

    def is_cancelled(self, msg_id: Any) -> bool:
        """The client cancelled this request, or went away (stdin closed): either way, stop the work."""
        return self.client_gone.is_set() or msg_id in self.cancelled

    def send(self, msg: dict) -> None:
        """Write one message. Whatever it holds, what goes out is strict JSON: a message that does not encode
        (lone surrogates, NaN, nesting) is sent with its strings repaired, or as an INTERNAL_ERROR reply."""
        try:
            data = P.encode(msg)
        except (ValueError, TypeError, RecursionError) as exc:  # UnicodeEncodeError is a ValueError
            log.warning("a %s did not encode (%s); sending it repaired", "reply" if "id" in msg else "message", exc)
            data = _encode_repaired(msg)
        if len(data) > P.MAX_REPLY_BYTES:
            mib = len(data) / (1 << 20)
            log.warning("a reply of %.0f MiB is over the protocol's limit", mib)
            data = P.encode(
                error(
                    msg.get("id") if valid_id(msg.get("id")) else None,
                    P.MESSAGE_TOO_LARGE,
                    f"the answer is {mib:.0f} MiB, over the {P.MAX_REPLY_BYTES >> 20} MiB a reply may carry; "
                    "ask for fewer items per request",
                )
            )
        if "id" in msg and ("result" in msg or "error" in msg):
            self._close(msg["id"] if valid_id(msg["id"]) else None)
        with self._write_lock:
            try:
                self.stdout.write(data)
                self.stdout.flush()
            except (BrokenPipeError, ValueError, OSError):
                log.warning("client pipe closed; exiting")
                os._exit(0)

    def _reader(self) -> None:
        try:
            self._read_loop()
        except BaseException:  # whatever happens here, the main loop must not wait forever
            log.exception("reader thread failed")
            self._queue.put(_EOF)

    def _read_loop(self) -> None:
        while True:
            try:
                body = P.read_frame(self.stdin, self.max_message_bytes)
            except P.FramingError as exc:
                self._queue.put(exc)
                if not exc.recoverable:
                    self._queue.put(_EOF)
                    return
                continue
            except (OSError, ValueError):
                body = None
            if body is None:
                self.client_gone.set()
                self._queue.put(_EOF)
                return
            try:
                msg = P.decode(body)
            except P.FramingError as exc:
                self._queue.put(exc)
                continue
            if isinstance(msg, dict) and msg.get("method") == "$/cancelRequest":
                params = msg.get("params")
                target = params.get("id") if isinstance(params, dict) else None
                with self._ids_lock:  # a cancel for an id not open is dropped, never kept for a later request
                    if valid_id(target) and target in self._open:
                        self.cancelled.add(target)
                if "id" not in msg:
                    continue  # sent as a request (it is a notification), it still gets its answer below
            rid = _request_id(msg)
            if rid is not None:
                with self._ids_lock:
                    self._open[rid] += 1
            self._queue.put(msg)

    # ----------------------------------------------------------------- loop
    def _heartbeat(self) -> None:
        """While a request runs, ``$/heartbeat`` every ``heartbeat_s``: the client tells a busy backend from a
        stopped or hung one by it."""
        while not self._stopped.wait(self.heartbeat_s):
            running = self._running
            if running is not None:
                self.notify("$/heartbeat", {"id": running})

    def _close(self, rid: Any) -> None:
        """A request is being answered: forget its id (and any cancel of it) before the answer goes out, so a
        cancel the client sends after reading the answer cannot be taken for a later request's."""
        if rid is None:
            return
        with self._ids_lock:
            self._open[rid] -= 1
            if self._open[rid] <= 0:
                del self._open[rid]
                self.cancelled.discard(rid)

    def serve(self) -> int:
        """Answer messages until ``exit`` or the end of stdin; returns the process's exit code."""
        threading.Thread(target=self._reader, name="deepexpr-reader", daemon=True).start()
        threading.Thread(target=self._heartbeat, name="deepexpr-heartbeat", daemon=True).start()
        try:
            return self._loop()
        finally:
            self._stopped.set()

    def _loop(self) -> int:
        while True:
            item = self._queue.get()
            if item is _EOF:
                log.info("stdin closed; exiting")
                return 0 if self.state == "shutdown" else 1
            if isinstance(item, P.FramingError):
                log.warning("framing error: %s", item)
                self.send(error(None, item.code, str(item)))
                if not item.recoverable:
                    # The byte stream is out of sync: nothing after this can be trusted.
                    self.send(error(None, P.PARSE_ERROR, "stream out of sync; the server stops"))
                continue
            try:
                code = self.handle(item)
            except Exception:  # handle() answers every error itself; this is the last guard of the loop
                log.error("internal error handling a message:\n%s", traceback.format_exc())
                self._close(_request_id(item))
                self.send(error(None, P.INTERNAL_ERROR, "internal error; see the backend's log"))
                continue
            if code is not None:
                return code

    def handle(self, msg: Any) -> int | None:
        """Answer one message. Returns an exit code when the client asked to exit."""
        if not isinstance(msg, dict):
            what = "batches are not supported" if isinstance(msg, list) else "a message must be a JSON object"
            self.send(error(None, P.INVALID_REQUEST, what))
            return None
        msg_id = msg.get("id")
        method = msg.get("method")
        is_request = "id" in msg
        # Only a valid id is echoed (JSON-RPC: null when it cannot be determined); anything else (nested
        # structures, lone surrogates) could not be sent back as strict JSON.
        reply_id = msg_id if valid_id(msg_id) else None
        if msg.get("jsonrpc") != "2.0" or not isinstance(method, str):
            if is_request or "method" in msg:
                what = 'need "jsonrpc": "2.0" and a string "method"'
                self.send(error(reply_id, P.INVALID_REQUEST, what))
            return None
        if is_request and not valid_id(msg_id):
            what = "id must be an integer or a string of valid Unicode text"
            self.send(error(None, P.INVALID_REQUEST, what))
            return None
        params = msg.get("params", {})
        if params is None:
            params = {}
        if not isinstance(params, dict):
            if is_request:
                self.send(error(msg_id, P.INVALID_PARAMS, "params must be an object (named params)"))
            return None
        if method == "exit":
            return 0 if self.state == "shutdown" else 1
        if not is_request:
            log.debug("ignoring notification %s", method)
            return None
        self._running = msg_id
        try:
            reply = P.response(msg_id, self._dispatch(method, params, msg_id))
            P.encode(reply)  # a result that does not serialise is a bug: answer INTERNAL_ERROR, do not die
        except DeepExprError as exc:
            reply = P.error_response(msg_id, exc.code, exc.message, exc.data)  # data names it
        except Exception as exc:  # a bug must not kill the server; report it and keep serving
            log.error("internal error in %s:\n%s", method, traceback.format_exc())
            reply = error(msg_id, P.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}", {"name": "INTERNAL_ERROR"})
        finally:
            self._running = None
        self.send(reply)
        return None

    def _dispatch(self, method: str, params: dict, msg_id: Any) -> Any:
        if method == "$/cancelRequest":  # done by the reader already
            return None
        if method == "shutdown":
            self.state = "shutdown"
            return None
        if self.state == "shutdown":  # initialize too: a shut-down server is not revived
            raise DeepExprError(P.SHUTTING_DOWN, "the server is shutting down; send exit")
        if method == "initialize":
            return self._initialize(params)
        handler = self.methods.get(method)
        if handler is None:
            raise DeepExprError(
                P.METHOD_NOT_FOUND, f"unknown method {method!r}; known: {', '.join(self.methods.names())}"
            )
        if self.state != "initialized":
            if self.init_error is not None:  # say why initialize failed, not just that it is missing
                raise DeepExprError(
                    self.init_error.code,
                    f"the backend did not initialize: {self.init_error.message}",
                    self.init_error.data,
                )
            raise DeepExprError(P.SERVER_NOT_INITIALIZED, "send initialize first")
        return handler(params, RequestContext(msg_id, self.engine, self.notify, self.is_cancelled))

    def _initialize(self, params: dict) -> dict:
        client_version = params.get("protocolVersion")
        if not isinstance(client_version, str) or not is_text(client_version):
            raise DeepExprError(P.INVALID_PARAMS, "initialize needs protocolVersion (a string of valid Unicode)")
        if client_version.split(".")[0] != P.PROTOCOL_VERSION.split(".")[0]:
            raise DeepExprError(
                P.INVALID_REQUEST,
                f"protocol {client_version} is not compatible with the "
                f"backend's {P.PROTOCOL_VERSION}; update the add-on or the backend",
            )
        options = params.get("options")
        if options is not None and not isinstance(options, dict):
            raise DeepExprError(P.INVALID_PARAMS, "initialize's options must be an object")
        parent = params.get("parentPid")
        if parent is not None:
            if not isinstance(parent, int) or isinstance(parent, bool) or not 1 <= parent <= MAX_PID:
                raise DeepExprError(P.INVALID_PARAMS, f"parentPid must be a process id (1..{MAX_PID})")
            if os.name != "nt" and not _alive(parent):  # answered, not silently exited on: a wrong pid
                raise DeepExprError(P.INVALID_PARAMS, f"parentPid {parent} is not a running process")
            if not self._watchdog_started:
                start_parent_watchdog(parent)
                self._watchdog_started = True
        if self.engine is None:
            try:
                self.engine = self.engine_factory(options or {})
            except DeepExprError as exc:
                self.init_error = exc
                raise
            self.init_error = None
        self.state = "initialized"
        return {
            "serverInfo": {"name": "deepexpr-backend", "version": __version__},
            "methods": self.methods.names(),
            **self.engine.info(),
        }


def error(reply_id: Any, code: int, message: str, data: dict | None = None) -> dict:
    """An error reply whose ``data.name`` repeats the symbolic name, as every error's does."""
    return P.error_response(reply_id, code, message, {"name": P.ERROR_NAMES.get(code, "ERROR"), **(data or {})})


def _request_id(msg: Any) -> Any:
    """The id of a message the main loop will answer, or None."""
    if isinstance(msg, dict) and "id" in msg and valid_id(msg["id"]):
        return msg["id"]
    return None


def _repaired(v: Any, depth: int = 0) -> Any:
    """``v`` made strictly encodable: lone surrogates replaced (U+FFFD), non-finite numbers as null, nesting cut."""
    if isinstance(v, str):
        return v if is_text(v) else v.encode("utf-8", "replace").decode("utf-8")
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if depth > 64:
        return "..."
    if isinstance(v, dict):
        return {_repaired(str(k), depth + 1): _repaired(x, depth + 1) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_repaired(x, depth + 1) for x in v]
    if v is None or isinstance(v, (bool, int)):
        return v
    return _repaired(repr(v), depth + 1)


def _encode_repaired(msg: dict) -> bytes:
    try:
        return P.encode(_repaired(msg))
    except (ValueError, TypeError, RecursionError):  # cannot happen; the loop must not die if it does
        reply_id = msg.get("id") if valid_id(msg.get("id")) else None
        return P.encode(error(reply_id, P.INTERNAL_ERROR, "a reply could not be encoded"))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def start_parent_watchdog(parent_pid: int, interval: float = 0.5) -> None:
    """Exit when ``parent_pid`` dies, or when we are re-parented (our parent process went away).
    On Windows, ``os.kill(pid, 0)`` is not a liveness check: there the backend relies on stdin closing."""
    if os.name == "nt":
        return
    original_ppid = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(interval)
            if not _alive(parent_pid) or os.getppid() != original_ppid:
                log.warning("parent process %d is gone; exiting", parent_pid)
                os._exit(0)

    threading.Thread(target=watch, name="deepexpr-watchdog", daemon=True).start()
