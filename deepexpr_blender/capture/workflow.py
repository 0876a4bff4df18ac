"""Capture: grab the source image (webcam, image file, or the frame under the playhead of the active movie
strip), then find its face and landmarks and read its expression, one request after the other.

The inputs are checked before anything changes; a capture clears the previous face (its preview, expression
and candidates), so after a failure nothing stale is shown and Find poses stays disabled until a face is
found."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import bpy

from .. import jobs, paths, sequencer
from ..errors import CaptureError
from ..session import connection

CAPTURE_IMAGE = "DeepExpr Capture"


class CaptureJob(jobs.Job):
    kind = "capture"
    title = "Capture"


def strip_source(scene) -> tuple[str, int]:
    """(movie file, source frame index) of the active movie strip under the playhead."""
    sed = scene.sequence_editor
    strip = sed.active_strip if sed else None
    if strip is None or strip.type != "MOVIE":
        raise CaptureError("Make a movie strip active in the Sequencer to capture from it")
    frame = scene.frame_current
    if not strip.frame_final_start <= frame < strip.frame_final_end:
        raise CaptureError(
            f"The playhead (frame {frame}) is not over the strip {strip.name} "
            f"(frames {strip.frame_final_start}-{strip.frame_final_end - 1}): move it over the strip"
        )
    problem = sequencer.fps_problem(scene, strip)
    if problem:
        raise CaptureError(problem)
    return bpy.path.abspath(strip.filepath), int(
        frame - strip.frame_start + getattr(strip, "animation_offset_start", 0)
    )


def _clear_face(props) -> None:
    props.captured_path = props.preview_path = props.expression = ""
    props.confidence = 0.0
    props.candidates.clear()


def capture(scene, on_image: Callable[[str, CaptureJob], None] | None = None) -> CaptureJob:
    """Grab the source image, then find its face, landmarks and expression (all asynchronous); or, with
    ``on_image``, hand the grabbed image's path and the job to it instead (Capture my neutral)."""
    props = scene.deepexpr
    if props.source == "IMAGE":
        image = bpy.path.abspath(props.image_path)
        if not image:
            raise CaptureError("Choose an image file first (Capture > Image)")
        if not os.path.isfile(image):
            raise CaptureError(f"The image {image} does not exist: choose another file")
        params = None
    elif props.source == "STRIP":
        movie, frame = strip_source(scene)
        params = {"source": movie, "frame": frame}
    else:
        params = {"source": props.webcam_index}
    client = connection.require_backend()
    out_dir = paths.output_dir("captures")
    if on_image is None:
        _clear_face(props)
    job = CaptureJob(scene, "Capturing..." if params else "Finding the face...")

    def analyse(image: str) -> None:
        job.say("Finding the face...")
        drawn = os.path.join(out_dir, f"landmarks-{int(time.time() * 1000)}.png")
        job.request_id = client.request(
            "detect", {"image": image, "draw": drawn}, job.guard(lambda r: found(image, drawn)), job.on_error
        )

    def found(image: str, drawn: str) -> None:
        job.say("Reading the expression...")
        job.request_id = client.request(
            "classify", {"image": image}, job.guard(lambda r: classified(image, drawn, r)), job.on_error
        )

    def classified(image: str, drawn: str, res: dict) -> None:
        p = job.props()
        if p is None:
            return job.finish("Capture done (its scene is gone)", "INFO")
        p.captured_path, p.preview_path = image, drawn
        p.expression, p.confidence = res["label"], max(res["probabilities"].values())
        _show_image(drawn)
        faces = res.get("faces_found", 1)
        job.finish(f"Captured: {res['label']} ({p.confidence:.0%})" + (f", {faces} faces" if faces > 1 else ""))

    def grabbed(image: str) -> None:
        if on_image is None:
            analyse(image)
        else:
            on_image(image, job)

    if params is None:
        grabbed(image)
    else:
        params["out"] = os.path.join(out_dir, f"capture-{int(time.time() * 1000)}.png")
        job.request_id = client.request("capture", params, job.guard(lambda r: grabbed(r["path"])), job.on_error)
    return job


def _show_image(path: str) -> None:
    """The landmarks drawing as the image "DeepExpr Capture" (for the Image Editor)."""
    img = bpy.data.images.get(CAPTURE_IMAGE)
    if img is None:
        img = bpy.data.images.load(path, check_existing=False)
        img.name = CAPTURE_IMAGE
    else:
        img.filepath = path
        img.reload()
