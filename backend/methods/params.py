"""Reading a request's params at the protocol's edge: one validator per kind of value, each failing with
INVALID_PARAMS naming the param. Handlers read their params only through these."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from ..errors import invalid_params
from ..limits import MAX_COORD, MAX_WEIGHT
from ..rpc import RequestContext, is_text
from ..scoring import RetrievalWeights


def string(params: dict, key: str, required: bool = True) -> str | None:
    """A non-empty string of valid Unicode (JSON escapes can carry lone surrogates, which are not text, and
    NUL, which no path holds); ``None`` when absent and not required."""
    v = params.get(key)
    if v is None and not required:
        return None
    if not isinstance(v, str) or not v:
        raise invalid_params(f"param {key!r} must be a non-empty string")
    _check_text(key, v)
    return v


def _check_text(key: str, v: str) -> None:
    if not is_text(v) or "\x00" in v:
        raise invalid_params(f"param {key!r} must be valid Unicode text without NUL characters")


def box(params: dict) -> list[float] | None:
    """``[left, top, right, bottom]`` in pixels (each within ±MAX_COORD), or None. Whether it fits the image is
    the engine's check (``Engine.analyze``), once the image is decoded."""
    b = params.get("box")
    if b is None:
        return None
    if not isinstance(b, list) or len(b) != 4 or not all(_is_number(v) and abs(v) <= MAX_COORD for v in b):
        raise invalid_params(f"param 'box' must be [left, top, right, bottom] in pixels, each within ±{MAX_COORD:g}")
    return b


def obj(params: dict, key: str) -> dict | None:
    """A JSON object; ``None`` when absent (its fields are checked by whoever reads them)."""
    v = params.get(key)
    if v is not None and not isinstance(v, dict):
        raise invalid_params(f"param {key!r} must be an object")
    return v


def weight(params: dict, key: str, default: float) -> float:
    """A retrieval weight: a number in 0..MAX_WEIGHT."""
    v = params.get(key, default)
    if not _is_number(v) or not 0 <= v <= MAX_WEIGHT:
        raise invalid_params(f"param {key!r} must be a number in 0..{MAX_WEIGHT:g}")
    return float(v)


def integer(params: dict, key: str, default: int, lo: int, hi: int) -> int:
    """An integer in ``lo..hi``."""
    v = params.get(key, default)
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise invalid_params(f"param {key!r} must be an integer in {lo}..{hi}")
    return v


def path_list(params: dict, key: str, limit: int) -> list[str]:
    """A list of at most ``limit`` path strings."""
    v = params.get(key)
    if not isinstance(v, list) or not all(isinstance(p, str) for p in v) or len(v) > limit:
        raise invalid_params(f"param {key!r} must be a list of at most {limit} paths")
    for i, path in enumerate(v):
        _check_text(f"{key}[{i}]", path)
    return v


def choice(params: dict, key: str, default: str, options: tuple[str, ...] | list[str]) -> str:
    v = params.get(key, default)
    if v not in options:
        raise invalid_params(f"param {key!r} must be one of {', '.join(options)}")
    return v


def _is_number(v: Any) -> bool:
    """A JSON number (requests are strict JSON, so it is finite: ``protocol.loads``)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def retrieval_weights(params: dict) -> RetrievalWeights:
    """Every ``RetrievalWeights`` field is a param of the same name (alpha, beta, gamma, delta, calibration)."""
    d = RetrievalWeights()
    w = RetrievalWeights(**{f.name: weight(params, f.name, getattr(d, f.name)) for f in fields(RetrievalWeights)})
    if w.calibration > 1:
        raise invalid_params("param 'calibration' must be in 0..1")
    return w


def index_progress(ctx: RequestContext) -> dict:
    """``progress`` and ``cancel`` for building a library's index within a request: one ``$/progress`` per
    batch of entries (``stage``: embedding, vector index), and the request's cancellation."""

    def progress(done: int, total: int, stage: str) -> None:
        ctx.progress(done, total, f"indexing the library: {stage}", stage="index")

    return {"progress": progress, "cancel": ctx.check_cancelled}
