"""The server's work methods: thin, validated wrappers over the engine (params in, JSON out)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from deepexpr_blender.core import protocol
from deepexpr_blender.core.vocabulary import DEFAULT_ALPHA, DEFAULT_BETA

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


def _weight(params: dict, key: str, default: float) -> float:
    v = params.get(key, default)
    if not isinstance(v, (int, float)) or isinstance(v, bool) or not v >= 0:
        raise invalid_params(f"param {key!r} must be a non-negative number")
    return float(v)


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
        alpha, beta = _weight(params, "alpha", DEFAULT_ALPHA), _weight(params, "beta", DEFAULT_BETA)
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
        """Retrieval over every ``frame_step``-th image of a list or frame of a video. Streams one ``$/progress``
        per sampled frame carrying that frame's result (``item``), so clients key as results come; frames
        without a face are reported, not fatal. The final answer (and a cancel's partial) holds counts and the
        frames without a face, not the per-frame results again (they already came with the progress)."""
        import cv2

        from .imageio import from_array
        from .library import DEFAULT_LIBRARY, ensure_default_library, load_library

        lib = load_library(_str(params, "library", required=False) or ensure_default_library(DEFAULT_LIBRARY))
        top_k = _int(params, "top_k", 5, 1, 100)
        step = _int(params, "frame_step", 1, 1, 1000)
        alpha, beta = _weight(params, "alpha", DEFAULT_ALPHA), _weight(params, "beta", DEFAULT_BETA)
        images, video = params.get("images"), params.get("video")
        if (images is None) == (video is None):
            raise invalid_params("give either 'images' (a list of paths) or 'video' (a path)")
        done, no_face = [0], []

        def summary() -> dict:
            return {"library": lib.root, "frame_step": step, "frames_done": done[0], "no_face": list(no_face)}

        def one(index: int, image, name: str, total: int) -> None:
            ctx.check_cancelled(partial=summary())
            item = {"index": index, "step": step}
            try:
                res = engine().retrieve(image, lib, top_k=top_k, alpha=alpha, beta=beta)
                item.update(ok=True, label=res["label"], candidates=[[c["id"], c["score"]] for c in res["candidates"]])
            except DeepExprError as exc:
                item.update(ok=False, error=exc.name, message=exc.message)
                no_face.append(index)
            done[0] += 1
            ctx.progress(done[0], total, name, item=item, library=lib.root)

        if images is not None:
            if not isinstance(images, list) or not all(isinstance(p, str) for p in images) or len(images) > MAX_BATCH:
                raise invalid_params(f"param 'images' must be a list of at most {MAX_BATCH} paths")
            sampled = images[::step]
            for k, path in enumerate(sampled):
                one(k, path, path, len(sampled))
            return summary()
        if not isinstance(video, str):
            raise invalid_params("param 'video' must be a path")
        cap = cv2.VideoCapture(video)
        if not cap.isOpened():
            raise DeepExprError(protocol.CAPTURE_FAILED, f"cannot open video {video}", {"source": video})
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        total = (n + step - 1) // step if n else 0
        try:
            k = 0
            while True:
                ok, img = cap.read()
                if not ok:
                    break
                if k % step == 0:  # frames go to the engine in memory: nothing is written to disk
                    one(
                        k // step,
                        from_array(cv2.cvtColor(img, cv2.COLOR_BGR2RGB)),
                        f"{video}#{k}",
                        max(total, done[0] + 1),
                    )
                k += 1
        finally:
            cap.release()
        return summary()

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
