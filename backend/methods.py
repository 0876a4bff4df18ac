"""The server's work methods: thin, validated wrappers over the engine (params in, JSON out)."""

from __future__ import annotations

import os
import shutil
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
    if (
        not isinstance(box, list)
        or len(box) != 4
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in box)
    ):
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
        return engine().align(
            _str(params, "image"), _str(params, "out"), size=_int(params, "size", 128, 16, 1024), box=_box(params)
        )

    @server.method("retrieve")
    def retrieve(params: dict, ctx: RequestContext) -> dict:
        from .library import DEFAULT_LIBRARY, ensure_default_library

        library = _str(params, "library", required=False) or ensure_default_library(DEFAULT_LIBRARY)
        alpha, beta = params.get("alpha", 1.0), params.get("beta", 0.1)
        for name, v in (("alpha", alpha), ("beta", beta)):
            if not isinstance(v, (int, float)) or isinstance(v, bool) or v < 0:
                raise invalid_params(f"param {name!r} must be a non-negative number")
        image = _str(params, "image")
        res = engine().retrieve(
            image,
            library,
            top_k=_int(params, "top_k", 5, 1, 1000),
            alpha=float(alpha),
            beta=float(beta),
            box=_box(params),
        )
        sheet = _str(params, "sheet", required=False)
        if sheet:
            from .sheet import retrieval_sheet

            res["sheet"] = retrieval_sheet(image, res, sheet)
        return res

    @server.method("retrieve_batch")
    def retrieve_batch(params: dict, ctx: RequestContext) -> dict:
        """Retrieval over a list of images or every ``frame_step``-th frame of a video. Streams one
        ``$/progress`` per frame carrying that frame's result (``item``), so clients can key as results come;
        frames without a face are reported, not fatal. Cancel returns the frames done so far."""
        import tempfile

        import cv2

        from .library import DEFAULT_LIBRARY, ensure_default_library, load_library

        lib = load_library(_str(params, "library", required=False) or ensure_default_library(DEFAULT_LIBRARY))
        top_k = _int(params, "top_k", 5, 1, 100)
        step = _int(params, "frame_step", 1, 1, 1000)
        alpha, beta = float(params.get("alpha", 1.0)), float(params.get("beta", 0.1))
        images, video = params.get("images"), params.get("video")
        if (images is None) == (video is None):
            raise invalid_params("give either 'images' (a list of paths) or 'video' (a path)")
        frames: list[dict] = []
        tmp = tempfile.mkdtemp(prefix="deepexpr-batch-")

        def one(index: int, path: str, total: int) -> None:
            ctx.check_cancelled(partial={"frames": frames, "library": lib.root})
            try:
                res = engine().retrieve(path, lib, top_k=top_k, alpha=alpha, beta=beta)
                item = {
                    "index": index,
                    "step": 1 if images is not None else step,
                    "ok": True,
                    "label": res["label"],
                    "candidates": [[c["id"], c["score"]] for c in res["candidates"]],
                }
            except DeepExprError as exc:
                item = {
                    "index": index,
                    "step": 1 if images is not None else step,
                    "ok": False,
                    "error": exc.name,
                    "message": exc.message,
                }
            frames.append(item)
            ctx.progress(len(frames), total, path, item=item, library=lib.root)

        if images is not None:
            if not isinstance(images, list) or not all(isinstance(p, str) for p in images) or len(images) > MAX_BATCH:
                raise invalid_params(f"param 'images' must be a list of at most {MAX_BATCH} paths")
            for i, path in enumerate(images):
                one(i, path, len(images))
        else:
            if not isinstance(video, str):
                raise invalid_params("param 'video' must be a path")
            cap = cv2.VideoCapture(video)
            if not cap.isOpened():
                from deepexpr_blender import protocol

                raise DeepExprError(protocol.CAPTURE_FAILED, f"cannot open video {video}", {"source": video})
            n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
            total = (n + step - 1) // step if n else 0
            try:
                k = 0
                while True:
                    ok, img = cap.read()
                    if not ok:
                        break
                    if k % step == 0:
                        path = os.path.join(tmp, f"frame_{k:06d}.png")
                        cv2.imwrite(path, img)
                        one(k // step, path, max(total, len(frames) + 1))
                    k += 1
            finally:
                cap.release()
        shutil.rmtree(tmp, ignore_errors=True)
        return {"library": lib.root, "frames": frames, "no_face": [f["index"] for f in frames if not f["ok"]]}

    @server.method("generate_sequence")
    def generate_sequence(params: dict, ctx: RequestContext) -> dict:
        """An expression transition (backend.sequence); one $/progress per frame; cancellable."""
        kinds = [k for k in ("expression", "target", "keyframes") if params.get(k) is not None]
        if len(kinds) != 1:
            raise invalid_params("give exactly one of 'expression', 'target' (image path), 'keyframes' (JSON path)")
        return engine().generate_sequence(
            _str(params, "source"),
            _str(params, "out"),
            frames=_int(params, "frames", 24, 2, 600),
            easing=params.get("easing", "ease_in_out"),
            method=params.get("method", "warp"),
            **{kinds[0]: _str(params, kinds[0])},
            progress=lambda done, total, path: ctx.progress(done, total, path),
            check_cancelled=lambda partial: ctx.check_cancelled(partial=partial),
        )

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
                results.append(
                    {"image": path, "ok": False, "error": {"code": exc.code, "name": exc.name, "message": exc.message}}
                )
            ctx.progress(i + 1, len(images), path)
        return {"results": results}
