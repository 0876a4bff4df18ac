"""RPC method of the live mirror: ``live`` streams one result per camera (or video) frame until cancelled.

Concurrency: ``live`` is one long-running request. The server answers requests one at a time, so while a
live session runs, other requests wait behind it; the client ends it with ``$/cancelRequest`` (read by the
server's reader thread at once; the loop stops within one frame, answers ``CANCELLED`` with the session's
summary in ``error.data.partial``). Frames are read in their own thread, newest only (stale frames dropped).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from deepexpr_blender.core.vocabulary import DEFAULT_TOP_K, LABELS

from ..errors import invalid_params
from ..geometry import geometric_features
from ..landmarks import semantic_from_68
from ..library import builtin_library
from ..live import LiveConfig, run_live
from ..rpc import Handler, RequestContext
from ..tracking import MODES, TrackerConfig
from . import params as p


def _number(params: dict, key: str, default: float, lo: float, hi: float) -> float:
    v = params.get(key, default)
    if not isinstance(v, (int, float)) or isinstance(v, bool) or not lo <= v <= hi:
        raise invalid_params(f"param {key!r} must be a number in {lo:g}..{hi:g}")
    return float(v)


def _flag(params: dict, key: str, default: bool) -> bool:
    v = params.get(key, default)
    if not isinstance(v, bool):
        raise invalid_params(f"param {key!r} must be true or false")
    return v


def neutral_param(params: dict) -> list[float] | None:
    v: Any = params.get("neutral")
    if v is None:
        return None
    if isinstance(v, dict) and "geometry" not in v and "points" in v:  # "Capture my neutral": 68 landmarks
        pts = np.asarray(v["points"], dtype=np.float64) if isinstance(v["points"], list) else None
        if pts is None or pts.shape != (68, 2) or not np.isfinite(pts).all():
            raise invalid_params("param 'neutral.points' must be 68 finite [x, y] landmarks")
        return geometric_features(semantic_from_68(pts)).astype(np.float64).tolist()
    if isinstance(v, dict):
        v = v.get("geometry")
    if not isinstance(v, list) or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v):
        raise invalid_params("param 'neutral' must be the actor's neutral geometry (a list of numbers) or {geometry}")
    return v


def tracker_config(params: dict) -> TrackerConfig:
    return TrackerConfig(
        mode=p.choice(params, "tracking", "flow", MODES),
        detect_every=p.integer(params, "detect_every", TrackerConfig.detect_every, 0, 1000),
    )


def live(params: dict, ctx: RequestContext) -> dict:
    source = params.get("source", 0)
    if not isinstance(source, (int, str)) or isinstance(source, bool) or source == "":
        raise invalid_params("param 'source' must be a webcam index or a video path")
    cfg = LiveConfig(
        top_k=p.integer(params, "top_k", DEFAULT_TOP_K, 1, 100),
        realtime=_flag(params, "realtime", True),
        max_seconds=_number(params, "max_seconds", 0.0, 0.0, 86400.0),
        preview=p.string(params, "preview", required=False),
        preview_fps=_number(params, "preview_fps", 10.0, 0.0, 60.0),
    )
    lib = ctx.engine.retriever.index(
        p.string(params, "library", required=False) or builtin_library(), **p.index_progress(ctx)
    ).library

    def emit(done: int, total: int, item: dict) -> None:
        ctx.progress(done, total, "live", item=item, library=lib.root)

    return run_live(
        ctx.engine,
        source,
        lib,
        cfg,
        weights=p.retrieval_weights(params),
        tracking=tracker_config(params),
        neutral=neutral_param(params),
        emit=emit,
        check_cancelled=lambda partial: ctx.check_cancelled(partial=partial),
    )


MAX_TAKE = 20_000  # frames in one key_poses request (the message limit comes first for long candidate lists)


def key_poses(params: dict, ctx: RequestContext) -> dict:
    """Sparse key poses from a take's expression trajectory (``backend/keyposes.py``)."""
    import numpy as np

    from ..keyposes import KeyPoseConfig
    from ..keyposes import key_poses as find_keys

    frames, probs = params.get("frames"), params.get("probabilities")
    if not isinstance(frames, list) or not all(isinstance(f, int) and not isinstance(f, bool) for f in frames):
        raise invalid_params("param 'frames' must be a list of frame numbers")
    if not 1 <= len(frames) <= MAX_TAKE:
        raise invalid_params(f"a take has 1..{MAX_TAKE} frames, not {len(frames)}")
    labels = params.get("labels", list(LABELS))
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels) or not labels:
        raise invalid_params("param 'labels' must be a list of expression names")
    try:
        x = np.asarray(probs, dtype=np.float64)
    except (TypeError, ValueError):
        x = None
    if x is None or x.shape != (len(frames), len(labels)) or not np.isfinite(x).all():
        raise invalid_params(f"param 'probabilities' must be {len(frames)} rows of {len(labels)} finite numbers")
    cands = params.get("candidates")
    if cands is not None:
        ok = isinstance(cands, list) and len(cands) == len(frames)
        ok = ok and all(
            c is None or (isinstance(c, list) and all(isinstance(e, list) and len(e) == 2 for e in c)) for c in cands
        )
        if not ok:
            raise invalid_params("param 'candidates' must be one list of [pose id, score] per frame (or null)")
        cands = [None if c is None else [(str(i), float(s)) for i, s in c] for c in cands]
    d = KeyPoseConfig()
    cfg = KeyPoseConfig(
        density=_number(params, "density", d.density, 0.0, 1.0),
        min_segment=p.integer(params, "min_segment", d.min_segment, 1, 1000),
        breakdowns=p.integer(params, "breakdowns", d.breakdowns, 0, 1000),
    )
    res = find_keys(frames, x, tuple(labels), cands, cfg)
    return {
        "keys": [
            {"index": k.index, "frame": k.frame, "kind": k.kind, "label": k.label, "pose_id": k.pose_id}
            for k in res.keys
        ],
        "segments": [list(s) for s in res.segments],
        "report": res.report,
    }


METHODS: dict[str, Handler] = {"live": live, "key_poses": key_poses}
