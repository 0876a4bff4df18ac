"""RPC method of frame capture: one frame from a webcam, a video file or a stream."""

from __future__ import annotations

from ..capture import capture_frame
from ..errors import invalid_params
from ..rpc import Handler, RequestContext
from . import params as p


def capture(params: dict, ctx: RequestContext) -> dict:
    source = params.get("source", 0)
    if isinstance(source, str):
        source = p.string(params, "source")
    elif not isinstance(source, int) or isinstance(source, bool) or not 0 <= source < 1000:
        raise invalid_params("param 'source' must be a webcam index (0..999) or a path / URL")
    frame = params.get("frame")
    if frame is not None and (not isinstance(frame, int) or isinstance(frame, bool) or frame < 0):
        raise invalid_params("param 'frame' must be a non-negative integer")
    return capture_frame(source, p.string(params, "out"), frame=frame)


METHODS: dict[str, Handler] = {"capture": capture}
