"""Generate an expression transition in the backend and add its frames as an image strip."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import bpy

from .. import compat, jobs, paths
from ..client import BackendError
from ..errors import WorkflowError
from ..session import connection


@dataclass
class TransitionJob:
    """One transition being generated: the modal operator watches ``done``; ``strip`` once it landed."""

    scene_name: str
    start: int
    request_id: int = -1
    done: bool = False
    strip: object = None
    error: str | None = None


def start_transition(scene) -> TransitionJob:
    props, name = scene.deepexpr, scene.name
    source = bpy.path.abspath(props.seq_source or props.captured_path)
    if not source:
        raise WorkflowError("Choose a source face image (or capture one)")
    out = paths.output_dir("sequences", f"transition-{int(time.time() * 1000)}")
    params = {
        "source": source,
        "frames": props.seq_frames,
        "easing": props.seq_easing,
        "method": props.seq_method,
        "out": out,
    }
    if props.seq_mode == "EXPRESSION":
        params["expression"] = props.seq_expression
    elif props.seq_mode == "IMAGE":
        params["target"] = bpy.path.abspath(props.seq_target_image)
    else:
        params["keyframes"] = bpy.path.abspath(props.seq_keyframes)
    job = TransitionJob(name, scene.frame_current)
    props.busy, props.status, props.progress = True, "Generating the transition...", 0.0

    def progress(p: dict) -> None:
        sc = jobs.scene(name)
        sc.deepexpr.progress = p["done"] / max(p["total"], 1)
        sc.deepexpr.status = f"Frame {p['done']} of {p['total']}"

    def finished(res: dict) -> None:
        sc = jobs.scene(name)
        job.strip = add_image_strip(sc, res["frames"], job.start, "DeepExpr transition")
        job.done = True
        sc.deepexpr.busy = False
        sc.deepexpr.status = f"Transition: {len(res['frames'])} frames on channel {job.strip.channel}"

    def failed(err: BackendError) -> None:
        job.done, job.error = True, str(err)
        jobs.on_failure(name, "Transition")(err)

    job.request_id = connection.require_backend().request("generate_sequence", params, finished, failed, progress)
    return job


def add_image_strip(scene, frames: list[str], start: int, name: str):
    """An image strip of ``frames`` at ``start`` on the lowest channel free over its frame range."""
    sed = scene.sequence_editor or scene.sequence_editor_create()
    end = start + len(frames)
    channel = 1
    while any(
        s.channel == channel and s.frame_final_start < end and s.frame_final_end > start for s in compat.strips_all(sed)
    ):
        channel += 1
    strip = compat.strips(sed).new_image(name=name, filepath=frames[0], channel=channel, frame_start=start)
    for f in frames[1:]:
        strip.elements.append(os.path.basename(f))
    return strip
