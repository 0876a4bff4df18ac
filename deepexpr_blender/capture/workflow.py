"""Capture: grab the source image (webcam, image file, or the frame under the playhead of the active movie
strip), then find its face, landmarks and expression, all asynchronously."""

from __future__ import annotations

import os
import time

import bpy

from .. import jobs, paths
from ..errors import CaptureError
from ..session import connection

CAPTURE_IMAGE = "DeepExpr Capture"


def strip_source(scene) -> tuple[str, int]:
    """(movie file, source frame index) of the active movie strip under the playhead."""
    sed = scene.sequence_editor
    strip = sed.active_strip if sed else None
    if strip is None or strip.type != "MOVIE":
        raise CaptureError("Make a movie strip active in the Sequencer to capture from it")
    frame = scene.frame_current
    if not strip.frame_final_start <= frame < strip.frame_final_end:
        raise CaptureError(f"The playhead (frame {frame}) is not over the strip {strip.name}")
    if abs(scene.render.fps / scene.render.fps_base - strip.fps) > 1e-3 if getattr(strip, "fps", 0) else False:
        raise CaptureError(
            f"{strip.name} runs at {strip.fps:g} fps and the scene at "
            f"{scene.render.fps / scene.render.fps_base:g}: capture needs them equal"
        )
    return bpy.path.abspath(strip.filepath), int(
        frame - strip.frame_start + getattr(strip, "animation_offset_start", 0)
    )


def capture(scene, on_image=None) -> None:
    """Grab the source image, then find its face, landmarks and expression (all asynchronous); or, with
    ``on_image``, hand the grabbed image's path to it instead (Capture my neutral)."""
    props, name = scene.deepexpr, scene.name
    client = connection.require_backend()
    out_dir = paths.output_dir("captures")
    props.busy, props.status = True, "Capturing..."

    def analyse(image: str) -> None:
        sc = jobs.scene(name)
        sc.deepexpr.captured_path = image
        sc.deepexpr.status = "Finding the face..."
        drawn = os.path.join(out_dir, f"landmarks-{int(time.time() * 1000)}.png")
        client.request(
            "detect", {"image": image, "draw": drawn}, lambda r: shown(drawn), jobs.on_failure(name, "Detection")
        )
        client.request("classify", {"image": image}, classified, jobs.on_failure(name, "Classification"))

    def shown(drawn: str) -> None:
        sc = jobs.scene(name)
        sc.deepexpr.preview_path = drawn
        img = bpy.data.images.get(CAPTURE_IMAGE)
        if img is None:
            img = bpy.data.images.load(drawn, check_existing=False)
            img.name = CAPTURE_IMAGE
        else:
            img.filepath = drawn
            img.reload()

    def classified(res: dict) -> None:
        sc = jobs.scene(name)
        sc.deepexpr.expression = res["label"]
        sc.deepexpr.confidence = max(res["probabilities"].values())
        sc.deepexpr.busy = False
        sc.deepexpr.status = f"{res['label']} ({sc.deepexpr.confidence:.0%}), {res['faces_found']} face(s)"

    if props.source == "IMAGE":
        path = bpy.path.abspath(props.image_path)
        if not path:
            props.busy, props.status = False, "Choose an image first"
            raise CaptureError("Choose an image file first")
        (on_image or analyse)(path)
        return
    out = os.path.join(out_dir, f"capture-{int(time.time() * 1000)}.png")
    if props.source == "WEBCAM":
        params = {"source": props.webcam_index, "out": out}
    else:
        movie, frame = strip_source(scene)
        params = {"source": movie, "frame": frame, "out": out}
    client.request("capture", params, lambda r: (on_image or analyse)(r["path"]), jobs.on_failure(name, "Capture"))
