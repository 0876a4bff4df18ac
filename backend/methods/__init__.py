"""The backend's RPC methods, one module per room of the backend they serve; each lists its handlers in
``METHODS``. Adding a method: a handler in the room's module and one line in its ``METHODS``."""

from __future__ import annotations

from ..rpc import MethodRegistry
from . import capture, live, perception, retrieval, sequence

ROOMS = (perception, retrieval, sequence, capture, live)


def registry() -> MethodRegistry:
    """Every work method, by name."""
    return MethodRegistry(room.METHODS for room in ROOMS)
