"""RPC methods of DeepExpr retrieval: retrieve (one face) and retrieve_batch (images or a video)."""

from __future__ import annotations

from deepexpr_blender.core import protocol
from deepexpr_blender.core.vocabulary import DEFAULT_TOP_K

from ..capture import open_video
from ..errors import DeepExprError, invalid_params
from ..library import builtin_library
from ..limits import MAX_BATCH, MAX_BATCH_TOP_K, MAX_FRAME_STEP, MAX_TOP_K
from ..retrieval import neutral_reference
from ..rpc import Handler, RequestContext
from . import params as p


def retrieve(params: dict, ctx: RequestContext) -> dict:
    library = p.string(params, "library", required=False) or builtin_library()
    weights = p.retrieval_weights(params)
    image = p.string(params, "image")
    top_k = p.integer(params, "top_k", DEFAULT_TOP_K, 1, MAX_TOP_K)
    neutral = neutral_reference(p.obj(params, "neutral"))
    res = ctx.engine.retriever.retrieve(
        image,
        library,
        top_k=top_k,
        weights=weights,
        box=p.box(params),
        neutral=neutral,
        **p.index_progress(ctx),
    )
    sheet = p.string(params, "sheet", required=False)
    if sheet:
        from ..sheet import retrieval_sheet

        res["sheet"] = retrieval_sheet(image, res, sheet)
    return res


def retrieve_batch(params: dict, ctx: RequestContext) -> dict:
    """Retrieval over every ``frame_step``-th image of a list or frame of a video. Streams one ``$/progress``
    per sampled frame carrying that frame's result (``item``), so clients key as results come; frames
    without a face are reported, not fatal. The final answer (and a cancel's partial) holds counts and the
    frames without a face, not the per-frame results again (they already came with the progress)."""
    lib_index = ctx.engine.retriever.index(
        p.string(params, "library", required=False) or builtin_library(), **p.index_progress(ctx)
    )
    lib = lib_index.library
    top_k = p.integer(params, "top_k", DEFAULT_TOP_K, 1, MAX_BATCH_TOP_K)
    step = p.integer(params, "frame_step", 1, 1, MAX_FRAME_STEP)
    weights = p.retrieval_weights(params)
    images, video = params.get("images"), params.get("video")
    # The actor's neutral: for images, the scorer's neutral-relative terms (backend.retrieval.neutral_reference);
    # for a video, the live path's geometry offset (backend.live), which also takes a geometry vector.
    neutral = neutral_reference(p.obj(params, "neutral")) if images is not None else None
    if (images is None) == (video is None):
        raise invalid_params("give either 'images' (a list of paths) or 'video' (a path)")
    done, no_face = [0], []

    def summary() -> dict:
        return {"library": lib.root, "frame_step": step, "frames_done": done[0], "no_face": list(no_face)}

    def one(index: int, image, name: str, total: int) -> None:
        ctx.check_cancelled(partial=summary())
        item = {"index": index, "step": step}
        try:
            res = ctx.engine.retriever.retrieve(image, lib_index, top_k=top_k, weights=weights, neutral=neutral)
            item.update(ok=True, label=res["label"], candidates=[[c["id"], c["score"]] for c in res["candidates"]])
        except DeepExprError as exc:
            item.update(ok=False, error=exc.name, message=exc.message)
            no_face.append(index)
        done[0] += 1
        ctx.progress(done[0], total, name, item=item, library=lib.root)

    if images is not None:
        sampled = p.path_list(params, "images", MAX_BATCH)[::step]
        for k, path in enumerate(sampled):
            one(k, path, path, len(sampled))
        return summary()
    video = p.string(params, "video")
    # Videos go frame by frame through the tracker (detection every few frames, optical flow between) and the
    # networks in batches: backend/live.py, shared with the live mirror.
    from ..live import FrameAnalyzer, Prefetch, result_item
    from .live import neutral_param, tracker_config

    analyzer = FrameAnalyzer(ctx.engine, lib_index, top_k, weights, tracker_config(params), neutral_param(params))
    with open_video(video) as v:
        total = (v.frame_count + step - 1) // step if v.frame_count else 0
        if total > MAX_BATCH:  # before any work
            raise invalid_params(
                f"{video} has {v.frame_count} frames; every {step}th is {total}, over the {MAX_BATCH} frames of one "
                f"request: use frame_step {-(-v.frame_count // MAX_BATCH)} or more"
            )
        # decoded in memory (nothing is written to disk), in a thread ahead of the tracking and the networks
        with Prefetch(v.frames(step)) as frames:
            for k, r in analyzer.analyze_stream(frames):
                ctx.check_cancelled(partial=summary())
                if done[0] >= MAX_BATCH:  # the container did not say how many frames it has
                    raise DeepExprError(
                        protocol.INVALID_PARAMS,
                        f"{video} has more than {MAX_BATCH * step} frames, over the {MAX_BATCH} sampled frames of one "
                        "request: raise frame_step",
                        {"partial": summary()},
                    )
                item = {"index": k // step, "step": step, **result_item(r, points=False)}
                if not r.ok:
                    no_face.append(k // step)
                done[0] += 1
                ctx.progress(done[0], max(total, done[0]), f"{video}#{k}", item=item, library=lib.root)
    return summary()


METHODS: dict[str, Handler] = {"retrieve": retrieve, "retrieve_batch": retrieve_batch}
