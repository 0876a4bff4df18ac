"""What the server and its methods share, and nothing else: the context a method handler gets, the
cancellation error, and the registry of methods by name. Imports neither the server nor any method, so the
server (``backend/server.py``) and the methods (``backend/methods/``) never import each other; they meet in
``backend/app.py``.

A method handler is a plain function ``handler(params, ctx) -> JSON-ready result``; it raises
``DeepExprError`` for anything the user can act on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from deepexpr_blender.core import protocol

from .errors import DeepExprError


def is_text(s: str) -> bool:
    """A string that encodes as UTF-8: no lone surrogates (which JSON escapes can carry)."""
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def valid_id(v: Any) -> bool:
    """A JSON-RPC id this server answers to: an integer, or a string of valid Unicode."""
    return (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, str) and is_text(v))


class Cancelled(DeepExprError):
    """The client cancelled the request; ``partial`` (the work done so far) travels in ``error.data``."""

    def __init__(self, partial: Any = None):
        data = {"partial": partial} if partial is not None else None
        super().__init__(protocol.CANCELLED, "cancelled by the client", data)


class RequestContext:
    """What a method handler gets besides its params: the engine, progress reporting and cancellation."""

    def __init__(
        self,
        msg_id: Any,
        engine: Any,
        notify: Callable[[str, dict], None],
        is_cancelled: Callable[[Any], bool],
    ):
        self.id, self.engine = msg_id, engine
        self._notify, self._is_cancelled = notify, is_cancelled

    @property
    def cancelled(self) -> bool:
        return self._is_cancelled(self.id)

    def check_cancelled(self, partial: Any = None) -> None:
        """Raise ``Cancelled(partial)`` when the client cancelled this request."""
        if self.cancelled:
            raise Cancelled(partial)

    def progress(self, done: int, total: int, message: str = "", **extra: Any) -> None:
        """One ``$/progress`` notification for this request."""
        self._notify("$/progress", {"id": self.id, "done": done, "total": total, "message": message, **extra})


Handler = Callable[[dict, RequestContext], Any]


class MethodRegistry:
    """RPC method name -> handler. Each ``backend/methods/<room>.py`` lists its handlers in ``METHODS``."""

    def __init__(self, tables: Iterable[Mapping[str, Handler]] = ()):
        self._handlers: dict[str, Handler] = {}
        for table in tables:
            for name, handler in table.items():
                self.add(name, handler)

    def add(self, name: str, handler: Handler) -> None:
        if name in self._handlers:
            raise ValueError(f"RPC method {name!r} is registered twice")
        self._handlers[name] = handler

    def get(self, name: str) -> Handler | None:
        return self._handlers.get(name)

    def names(self) -> list[str]:
        return sorted(self._handlers)

    def __contains__(self, name: object) -> bool:
        return name in self._handlers
