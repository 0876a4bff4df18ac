"""The backend's one exception type, carrying a stable protocol error code."""

from __future__ import annotations

from typing import Any

from deepexpr_blender.core import protocol


class DeepExprError(Exception):
    """An error the user can act on. ``code`` is one of the codes in ``deepexpr_blender.core.protocol``."""

    def __init__(self, code: int, message: str, data: dict[str, Any] | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = dict(data or {})
        self.data.setdefault("name", protocol.ERROR_NAMES.get(code, "ERROR"))

    @property
    def name(self) -> str:
        return self.data["name"]

    def __str__(self) -> str:
        return f"{self.name}: {self.message}"


def invalid_image(message: str, path: str | None = None) -> DeepExprError:
    return DeepExprError(protocol.INVALID_IMAGE, message, {"path": path} if path else None)


def invalid_params(message: str) -> DeepExprError:
    return DeepExprError(protocol.INVALID_PARAMS, message)
