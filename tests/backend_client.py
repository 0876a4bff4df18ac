"""A minimal synchronous client for the backend subprocess, used by the tests and the benchmark."""

from __future__ import annotations

import collections
import os
import queue
import subprocess
import sys
import threading
from typing import Any

from deepexpr_blender.core import protocol as P

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class BackendProcess:
    def __init__(self, *extra_args: str, module: str = "backend.cli", serve_args: tuple[str, ...] = ()):
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module, "--log-level", "WARNING", *extra_args, "serve", "--stdio", *serve_args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=ROOT,
            env=env,
        )
        self.next_id = 0
        self.notifications: list[dict] = []
        # Stderr is drained all the time (as the add-on's client does): a full pipe would block the backend.
        self._stderr: collections.deque[bytes] = collections.deque(maxlen=200)
        threading.Thread(target=self._drain_stderr, daemon=True).start()
        # Frames are read by a thread too, so a read can time out (select on the pipe would miss frames
        # already in the reader's buffer).
        self._frames: queue.Queue = queue.Queue()
        threading.Thread(target=self._read_stdout, daemon=True).start()

    def _read_stdout(self) -> None:
        while True:
            try:
                body = P.read_frame(self.proc.stdout, P.MAX_REPLY_BYTES)
            except Exception as exc:  # handed to the test that reads next
                self._frames.put(exc)
                return
            self._frames.put(body)
            if body is None:
                return

    def read_body(self, timeout: float | None = None) -> bytes | None:
        """The next frame's body (None once stdout has closed); TimeoutError after ``timeout`` seconds."""
        try:
            item = self._frames.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(
                f"no message from the backend within {timeout} s; stderr: {self.stderr_tail()}"
            ) from None
        if item is None or isinstance(item, Exception):
            self._frames.put(item)  # every later read sees the end too
        if isinstance(item, Exception):
            raise item
        return item

    def _drain_stderr(self) -> None:
        for line in iter(self.proc.stderr.readline, b""):
            self._stderr.append(line)

    def stderr_tail(self) -> str:
        return b"".join(self._stderr).decode("utf-8", "replace")[-4000:]

    def send_raw(self, data: bytes) -> None:
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def send(self, msg: dict) -> None:
        self.send_raw(P.encode(msg))

    def read(self, heartbeats: bool = False, timeout: float | None = None) -> dict:
        """The next message; ``$/heartbeat`` notifications (liveness only) are skipped unless asked for."""
        while True:
            body = self.read_body(timeout)
            if body is None:
                raise EOFError(f"backend closed stdout; stderr: {self.stderr_tail()}")
            msg = P.decode(body)
            if heartbeats or msg.get("method") != "$/heartbeat":
                return msg

    def read_response(self, msg_id: Any = None) -> dict:
        """Next response (skipping notifications, which are kept in ``self.notifications``)."""
        while True:
            msg = self.read()
            if "method" in msg and "id" not in msg:
                self.notifications.append(msg)
                continue
            if msg_id is None or msg.get("id") == msg_id:
                return msg

    def request(self, method: str, params: dict | None = None) -> dict:
        self.next_id += 1
        self.send(P.request(self.next_id, method, params))
        return self.read_response(self.next_id)

    def call(self, method: str, params: dict | None = None) -> Any:
        resp = self.request(method, params)
        if "error" in resp:
            raise RuntimeError(resp["error"])
        return resp["result"]

    def initialize(self, **params: Any) -> dict:
        return self.call("initialize", {"protocolVersion": P.PROTOCOL_VERSION, "parentPid": os.getpid(), **params})

    def close(self, timeout: float = 10) -> int:
        if self.proc.poll() is None:
            try:
                self.call("shutdown")
                self.send(P.notification("exit"))
            except (BrokenPipeError, EOFError, OSError, RuntimeError):
                pass
            try:
                return self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                return self.proc.wait()
        return self.proc.returncode
