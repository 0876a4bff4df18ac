"""Generate an expression transition in the backend and add its frames as an image strip: on the first
channel above the strips it overlaps, scaled to fit the scene, and (for a file not saved yet) moved beside
the .blend when the file is first saved, so the strip does not point into the user folder."""

from __future__ import annotations

import logging
import os
import shutil
import time

import bpy

from .. import compat, jobs, paths, sequencer
from ..errors import WorkflowError
from ..session import connection

log = logging.getLogger(__name__)

STRIP_NAME = "DeepExpr transition"


class TransitionJob(jobs.Job):
    """One transition being generated; ``strip`` once it landed."""

    kind = "transition"
    title = "Generate transition"
    cancellable = True

    def __init__(self, scene, start: int):
        super().__init__(scene, "Generating the transition...")
        self.start = start
        self.strip = None


def start_transition(scene) -> TransitionJob:
    props = scene.deepexpr
    source = bpy.path.abspath(props.seq_source or props.captured_path)
    if not source:
        raise WorkflowError("Choose a source face image (or capture one)")
    if not os.path.isfile(source):
        raise WorkflowError(f"The source face {source} does not exist: choose another image")
    params = {"source": source, "frames": props.seq_frames, "easing": props.seq_easing, "method": props.seq_method}
    if props.seq_mode == "EXPRESSION":
        params["expression"] = props.seq_expression
    elif props.seq_mode == "IMAGE":
        params["target"] = bpy.path.abspath(props.seq_target_image)
        if not os.path.isfile(params["target"]):
            raise WorkflowError("Choose the target face image (Transition > Target face)")
    else:
        params["keyframes"] = bpy.path.abspath(props.seq_keyframes)
        if not os.path.isfile(params["keyframes"]):
            raise WorkflowError("Choose the landmark key frames file (Transition > Key frames)")
    client = connection.require_backend()
    params["out"] = paths.output_dir("sequences", f"transition-{int(time.time() * 1000)}")
    job = TransitionJob(scene, scene.frame_current)

    def progress(p: dict) -> None:
        job.progress(p["done"], p["total"], f"Transition: frame {p['done']} of {p['total']}")

    def finished(res: dict) -> None:
        sc = job.scene()
        if sc is None:
            return job.finish("Transition generated (its scene is gone)", "INFO")
        job.strip = add_image_strip(sc, res["frames"], job.start, STRIP_NAME)
        job.finish(f"Transition: {len(res['frames'])} frames on channel {job.strip.channel}")

    job.request_id = client.request("generate_sequence", params, job.guard(finished), job.on_error, job.guard(progress))
    return job


def add_image_strip(scene, frames: list[str], start: int, name: str):
    """An image strip of ``frames`` at ``start``, on the first channel above the strips it overlaps, scaled to
    fit the scene's resolution (a 64x64 GAN frame fills the height of a 1920x1080 scene)."""
    sed = scene.sequence_editor or scene.sequence_editor_create()
    channel = sequencer.channel_above(sed, start, start + len(frames))
    strip = compat.strips(sed).new_image(name=name, filepath=frames[0], channel=channel, frame_start=start)
    for f in frames[1:]:
        strip.elements.append(os.path.basename(f))
    strip["deepexpr_transition"] = True
    fit_to_scene(scene, strip, frames[0])
    return strip


def fit_to_scene(scene, strip, first_frame: str) -> None:
    """Scale ``strip`` so its images fit the scene's frame (kept whole, centred)."""
    size = sequencer.png_size(first_frame)
    if size is None:
        img = bpy.data.images.load(first_frame, check_existing=True)
        size = tuple(img.size)
    w, h = size
    if w and h:
        s = min(scene.render.resolution_x / w, scene.render.resolution_y / h)
        strip.transform.scale_x = strip.transform.scale_y = s


def relocate_strips(blend_path: str) -> int:
    """Move the frames of transition strips that live in the extension's user folder into
    ``<blend folder>/deepexpr/sequences/`` and point the strips there: a file saved for the first time must not
    reference the user folder. Returns how many strips moved."""
    if not blend_path:
        return 0
    user_root = os.path.realpath(paths.user_dir("output"))
    dest_root = os.path.join(os.path.dirname(os.path.abspath(blend_path)), "deepexpr", "sequences")
    moved = 0
    for scene in bpy.data.scenes:
        sed = scene.sequence_editor
        if sed is None:
            continue
        for strip in compat.strips_all(sed):
            if strip.type != "IMAGE" or not strip.get("deepexpr_transition"):
                continue
            folder = os.path.realpath(bpy.path.abspath(strip.directory))
            if not folder.startswith(user_root + os.sep):
                continue
            dest = os.path.join(dest_root, os.path.basename(folder))
            if not os.path.isdir(dest):
                shutil.copytree(folder, dest)
            strip.directory = dest + os.sep  # saving makes it relative to the .blend (//deepexpr/sequences/...)
            moved += 1
    return moved


@bpy.app.handlers.persistent
def _on_save_pre(*args) -> None:
    """Before the file is written: transition frames still in the user folder move beside the .blend."""
    path = args[0] if args and isinstance(args[0], str) and args[0] else bpy.data.filepath
    try:
        n = relocate_strips(path)
        if n:
            log.info("moved %d transition strip(s) beside %s", n, path)
    except OSError as exc:  # never block saving
        log.error("DeepExpr: could not move transition frames beside %s: %s", path, exc)


def register() -> None:
    if _on_save_pre not in bpy.app.handlers.save_pre:
        bpy.app.handlers.save_pre.append(_on_save_pre)


def unregister() -> None:
    if _on_save_pre in bpy.app.handlers.save_pre:
        bpy.app.handlers.save_pre.remove(_on_save_pre)
