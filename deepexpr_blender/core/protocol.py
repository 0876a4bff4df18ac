"""The wire protocol between the Blender extension and the backend (stdlib only).

JSON-RPC 2.0 messages, each framed as in the Language Server Protocol::

    Content-Length: <bytes>\\r\\n
    \\r\\n
    <UTF-8 JSON body>

This module is imported by both sides (the add-on inside Blender's Python, the backend in its own
virtual environment), so the protocol version, the error codes and the framing exist once.
See docs/protocol.md for the full description.
"""

from __future__ import annotations

import json
import math
from typing import IO, Any

PROTOCOL_VERSION = "1.0"

# Largest message body either side accepts. Images travel as paths, so real messages are small.
MAX_MESSAGE_BYTES = 1 << 20
# Largest reply the backend sends (and the client reads): a batch's results can be tens of MiB.
MAX_REPLY_BYTES = 64 << 20
# Largest header block (all header lines together).
MAX_HEADER_BYTES = 4096

# Standard JSON-RPC 2.0 codes.
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
# Project range (-32000 .. -32099 is reserved by JSON-RPC for implementation-defined server errors).
SERVER_NOT_INITIALIZED = -32002
NO_FACE = -32010
INVALID_IMAGE = -32011
IMAGE_TOO_LARGE = -32012
MODEL_MISSING = -32013
MODEL_INVALID = -32014
LIBRARY_INVALID = -32015
CAPTURE_FAILED = -32016
CANCELLED = -32017
MESSAGE_TOO_LARGE = -32018
SHUTTING_DOWN = -32019
# Raised by the client, never sent by the backend: the backend cannot be started, exited, or does not answer.
BACKEND_UNAVAILABLE = -32020
OUTPUT_FAILED = -32021

ERROR_NAMES = {
    PARSE_ERROR: "PARSE_ERROR",
    INVALID_REQUEST: "INVALID_REQUEST",
    METHOD_NOT_FOUND: "METHOD_NOT_FOUND",
    INVALID_PARAMS: "INVALID_PARAMS",
    INTERNAL_ERROR: "INTERNAL_ERROR",
    SERVER_NOT_INITIALIZED: "SERVER_NOT_INITIALIZED",
    NO_FACE: "NO_FACE",
    INVALID_IMAGE: "INVALID_IMAGE",
    IMAGE_TOO_LARGE: "IMAGE_TOO_LARGE",
    MODEL_MISSING: "MODEL_MISSING",
    MODEL_INVALID: "MODEL_INVALID",
    LIBRARY_INVALID: "LIBRARY_INVALID",
    CAPTURE_FAILED: "CAPTURE_FAILED",
    CANCELLED: "CANCELLED",
    MESSAGE_TOO_LARGE: "MESSAGE_TOO_LARGE",
    SHUTTING_DOWN: "SHUTTING_DOWN",
    BACKEND_UNAVAILABLE: "BACKEND_UNAVAILABLE",
    OUTPUT_FAILED: "OUTPUT_FAILED",
}
ERROR_CODES = {name: code for code, name in ERROR_NAMES.items()}


class FramingError(Exception):
    """The byte stream does not hold a well-formed frame.

    ``recoverable`` is True when the bad frame was consumed whole, so the next frame can still be read.
    """

    def __init__(self, message: str, code: int = PARSE_ERROR, recoverable: bool = True):
        super().__init__(message)
        self.code = code
        self.recoverable = recoverable


def encode(message: dict[str, Any]) -> bytes:
    """Frame one JSON-RPC message as strict JSON. Raises ValueError (UnicodeEncodeError for lone surrogates,
    ValueError for NaN / Infinity), TypeError or RecursionError for a message that has no strict encoding."""
    body = json.dumps(message, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite(text: str) -> float:
    v = float(text)
    if not math.isfinite(v):
        raise ValueError(f"the number {text[:40]} is beyond the double range")
    return v


def loads(text: str) -> Any:
    """Strict JSON: ``NaN``, ``Infinity`` and numbers that overflow a double are refused (ValueError), so every
    number read this way is finite. Used for messages and for the JSON files the backend reads from users."""
    return json.loads(text, parse_constant=_no_constant, parse_float=_finite)


def read_frame(stream: IO[bytes], max_bytes: int = MAX_MESSAGE_BYTES) -> bytes | None:
    """Read one frame's body from a binary stream. Returns None at a clean end of stream.

    Raises FramingError for a malformed header or an oversized body. An oversized body is read and
    discarded (up to 64 times the limit) so that the stream stays in sync.
    """
    headers: dict[str, str] = {}
    header_bytes = 0
    while True:
        line = stream.readline(MAX_HEADER_BYTES + 1)
        if not line:
            if headers or header_bytes:
                raise FramingError("end of stream inside a header", recoverable=False)
            return None
        header_bytes += len(line)
        if header_bytes > MAX_HEADER_BYTES:
            raise FramingError("header block larger than %d bytes" % MAX_HEADER_BYTES, recoverable=False)
        if line in (b"\r\n", b"\n"):
            if not headers:
                continue  # tolerate stray blank lines between frames
            break
        name, sep, value = line.decode("latin-1").partition(":")
        if not sep:
            raise FramingError("malformed header line %r" % line[:80], recoverable=False)
        headers[name.strip().lower()] = value.strip()
    if "content-length" not in headers:
        raise FramingError("missing Content-Length header", recoverable=False)
    try:
        length = int(headers["content-length"])
        if length < 0:
            raise ValueError
    except ValueError:
        raise FramingError("bad Content-Length %r" % headers["content-length"], recoverable=False) from None
    if length > max_bytes:
        if length > 64 * max_bytes:
            raise FramingError("message of %d bytes is far over the limit" % length, MESSAGE_TOO_LARGE, False)
        remaining = length
        while remaining:
            chunk = stream.read(min(remaining, 1 << 16))
            if not chunk:
                raise FramingError("end of stream inside an oversized body", MESSAGE_TOO_LARGE, False)
            remaining -= len(chunk)
        raise FramingError("message of %d bytes is over the %d-byte limit" % (length, max_bytes), MESSAGE_TOO_LARGE)
    body = b""
    while len(body) < length:
        chunk = stream.read(length - len(body))
        if not chunk:
            raise FramingError("end of stream inside a body", recoverable=False)
        body += chunk
    return body


def decode(body: bytes) -> Any:
    """Parse a frame's body as JSON; raises FramingError (PARSE_ERROR, recoverable) if it is not JSON."""
    try:
        return loads(body.decode("utf-8"))
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise FramingError("body is not strict UTF-8 JSON (or nests too deeply): %s" % str(exc)[:200]) from None


def request(msg_id: int | str, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    msg: dict[str, Any] = {"jsonrpc": "2.0", "id": msg_id, "method": method}
    if params is not None:
        msg["params"] = params
    return msg


def notification(method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    msg: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        msg["params"] = params
    return msg


def response(msg_id: int | str | None, result: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": msg_id, "result": result}


def error_response(msg_id: int | str | None, code: int, message: str, data: Any = None) -> dict[str, Any]:
    err: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        err["data"] = data
    return {"jsonrpc": "2.0", "id": msg_id, "error": err}
