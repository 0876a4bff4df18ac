"""The server's work methods: thin, validated wrappers over the engine (params in, JSON out)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .capture import capture_frame
from .errors import DeepExprError, invalid_params

if TYPE_CHECKING:
    from .server import RequestContext, Server

BATCH_OPS = ("detect", "landmarks", "classify", "embed")
MAX_BATCH = 10_000


def _str(params: dict, key: str, required: bool = True) -> str | None:
    v = params.get(key)
    if v is None and not required:
        return None
    if not isinstance(v, str) or not v:
        raise invalid_params(f"param {key!r} must be a non-empty string")
    return v


def _box(params: dict) -> list[float] | None:
    box = params.get("box")
    if box is None:
        return None
    if (not isinstance(box, list) or len(box) != 4
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in box)):
        raise invalid_params("param 'box' must be [left, top, right, bottom] in pixels")
    return box


def _int(params: dict, key: str, default: int, lo: int, hi: int) -> int:
    v = params.get(key, default)
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise invalid_params(f"param {key!r} must be an integer in {lo}..{hi}")
    return v


def register_methods(server: Server) -> None:
    def engine() -> Any:
        return server.engine

    @server.method("detect")
    def detect(params: dict, ctx: RequestContext) -> dict:
        image, out = _str(params, "image"), _str(params, "draw", required=False)
        if out:
            return engine().draw(image, out, box=_box(params))
        return engine().detect(image, box=_box(params))

    @server.method("landmarks")
    def landmarks(params: dict, ctx: RequestContext) -> dict:
        return engine().landmarks(_str(params, "image"), box=_box(params))

    @server.method("classify")
    def classify(params: dict, ctx: RequestContext) -> dict:
        return engine().classify(_str(params, "image"), box=_box(params))

    @server.method("embed")
    def embed(params: dict, ctx: RequestContext) -> dict:
        return engine().embed(_str(params, "image"), box=_box(params))

    @server.method("align")
    def align(params: dict, ctx: RequestContext) -> dict:
        return engine().align(_str(params, "image"), _str(params, "out"), size=_int(params, "size", 128, 16, 1024),
                              box=_box(params))

    @server.method("retrieve")
    def retrieve(params: dict, ctx: RequestContext) -> dict:
        from .library import DEFAULT_LIBRARY, ensure_default_library

        library = _str(params, "library", required=False) or ensure_default_library(DEFAULT_LIBRARY)
        alpha, beta = params.get("alpha", 1.0), params.get("beta", 0.1)
        for name, v in (("alpha", alpha), ("beta", beta)):
            if not isinstance(v, (int, float)) or isinstance(v, bool) or v < 0:
                raise invalid_params(f"param {name!r} must be a non-negative number")
        image = _str(params, "image")
        res = engine().retrieve(image, library, top_k=_int(params, "top_k", 5, 1, 1000), alpha=float(alpha),
                                beta=float(beta), box=_box(params))
        sheet = _str(params, "sheet", required=False)
        if sheet:
            from .sheet import retrieval_sheet

            res["sheet"] = retrieval_sheet(image, res, sheet)
        return res

    @server.method("capture")
    def capture(params: dict, ctx: RequestContext) -> dict:
        source = params.get("source", 0)
        if not isinstance(source, (int, str)) or isinstance(source, bool):
            raise invalid_params("param 'source' must be a webcam index or a path / URL")
        frame = params.get("frame")
        if frame is not None and (not isinstance(frame, int) or isinstance(frame, bool) or frame < 0):
            raise invalid_params("param 'frame' must be a non-negative integer")
        return capture_frame(source, _str(params, "out"), frame=frame)

    @server.method("analyze_batch")
    def analyze_batch(params: dict, ctx: RequestContext) -> dict:
        """Run one engine op over many images, streaming $/progress; per-image errors do not stop the batch."""
        images = params.get("images")
        if not isinstance(images, list) or not all(isinstance(p, str) for p in images) or len(images) > MAX_BATCH:
            raise invalid_params(f"param 'images' must be a list of at most {MAX_BATCH} paths")
        op = params.get("op", "landmarks")
        if op not in BATCH_OPS:
            raise invalid_params(f"param 'op' must be one of {', '.join(BATCH_OPS)}")
        fn = getattr(engine(), op)
        results: list[dict] = []
        for i, path in enumerate(images):
            ctx.check_cancelled(partial=results)
            try:
                results.append({"image": path, "ok": True, **fn(path)})
            except DeepExprError as exc:
                results.append({"image": path, "ok": False, "error": {"code": exc.code, "name": exc.name,
                                                                      "message": exc.message}})
            ctx.progress(i + 1, len(images), path)
        return {"results": results}
