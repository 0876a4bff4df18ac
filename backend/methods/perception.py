"""RPC methods of the perception engine: detect, landmarks, classify, embed, align, and analyze_batch."""

from __future__ import annotations

from ..errors import DeepExprError
from ..limits import ALIGN_SIZES, MAX_BATCH
from ..rpc import Handler, RequestContext
from . import params as p

BATCH_OPS = ("detect", "landmarks", "classify", "embed")


def detect(params: dict, ctx: RequestContext) -> dict:
    image, out = p.string(params, "image"), p.string(params, "draw", required=False)
    if out:
        return ctx.engine.draw(image, out, box=p.box(params))
    return ctx.engine.detect(image, box=p.box(params))


def landmarks(params: dict, ctx: RequestContext) -> dict:
    return ctx.engine.landmarks(p.string(params, "image"), box=p.box(params))


def classify(params: dict, ctx: RequestContext) -> dict:
    return ctx.engine.classify(p.string(params, "image"), box=p.box(params))


def embed(params: dict, ctx: RequestContext) -> dict:
    return ctx.engine.embed(p.string(params, "image"), box=p.box(params))


def align(params: dict, ctx: RequestContext) -> dict:
    image, out = p.string(params, "image"), p.string(params, "out")
    return ctx.engine.align(image, out, size=p.integer(params, "size", 128, *ALIGN_SIZES), box=p.box(params))


def analyze_batch(params: dict, ctx: RequestContext) -> dict:
    """Run one engine op over many images, streaming $/progress; per-image errors do not stop the batch."""
    images = p.path_list(params, "images", MAX_BATCH)
    fn = getattr(ctx.engine, p.choice(params, "op", "landmarks", BATCH_OPS))
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


METHODS: dict[str, Handler] = {
    "detect": detect,
    "landmarks": landmarks,
    "classify": classify,
    "embed": embed,
    "align": align,
    "analyze_batch": analyze_batch,
}
