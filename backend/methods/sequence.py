"""RPC method of expression transitions (``backend/sequence.py``)."""

from __future__ import annotations

from .. import sequence
from ..errors import invalid_params
from ..limits import MAX_FRAMES
from ..rpc import Handler, RequestContext
from . import params as p

TARGETS = ("expression", "target", "keyframes")


def generate_sequence(params: dict, ctx: RequestContext) -> dict:
    """An expression transition; one $/progress per frame; cancellable (partial frames)."""
    kinds = [k for k in TARGETS if params.get(k) is not None]
    if len(kinds) != 1:
        raise invalid_params("give exactly one of 'expression', 'target' (image path), 'keyframes' (JSON path)")
    d = sequence.SequenceConfig()
    cfg = sequence.SequenceConfig(
        frames=p.integer(params, "frames", d.frames, 2, MAX_FRAMES),
        easing=p.choice(params, "easing", d.easing, tuple(sequence.EASINGS)),
        method=p.choice(params, "method", d.method, sequence.METHODS),
    )
    return sequence.generate(
        ctx.engine,
        p.string(params, "source"),
        p.string(params, "out"),
        cfg,
        **{kinds[0]: p.string(params, kinds[0])},
        progress=lambda done, total, path: ctx.progress(done, total, path),
        check_cancelled=lambda partial: ctx.check_cancelled(partial=partial),
    )


METHODS: dict[str, Handler] = {"generate_sequence": generate_sequence}
