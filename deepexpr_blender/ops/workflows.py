"""What the operators do, as functions of the scene: requests to the backend and the callbacks that apply
the answers on the main thread. Operators are thin wrappers; tests call these directly and drain the client
(``runtime.drain``) because timers do not fire when bpy runs as a module."""

from __future__ import annotations

import json
import os
import time

import bpy

from ..client import BackendError
from ..core import library_format
from ..core.smoothing import smooth
from . import runtime
from .keying import KeyingError, key_pose

CAPTURE_IMAGE = "DeepExpr Capture"


def _scene(name: str):
    return bpy.data.scenes.get(name)


def _fail(scene_name: str, what: str):
    def on_error(err: BackendError) -> None:
        sc = _scene(scene_name)
        if sc:
            sc.deepexpr.busy = False
            sc.deepexpr.status = f"{what} failed: {err}"
        runtime.set_status(runtime.status["text"], f"{what} failed: {err}")

    return on_error


def library_root(scene) -> str:
    """The chosen library folder, or "" for the backend's built-in library."""
    props = scene.deepexpr
    if props.library == "CUSTOM":
        return bpy.path.abspath(props.library_path)
    if props.library.startswith("PREF"):
        p = runtime.prefs()
        i = int(props.library[4:])
        return bpy.path.abspath(p.library_folders[i].path) if p and i < len(p.library_folders) else ""
    return ""


# ------------------------------------------------------------------------------------------ capture
def strip_source(scene) -> tuple[str, int]:
    """(movie file, source frame index) of the active movie strip under the playhead."""
    sed = scene.sequence_editor
    strip = sed.active_strip if sed else None
    if strip is None or strip.type != "MOVIE":
        raise KeyingError("Make a movie strip active in the Sequencer to capture from it")
    frame = scene.frame_current
    if not strip.frame_final_start <= frame < strip.frame_final_end:
        raise KeyingError(f"The playhead (frame {frame}) is not over the strip {strip.name}")
    if abs(scene.render.fps / scene.render.fps_base - strip.fps) > 1e-3 if getattr(strip, "fps", 0) else False:
        raise KeyingError(
            f"{strip.name} runs at {strip.fps:g} fps and the scene at "
            f"{scene.render.fps / scene.render.fps_base:g}: capture needs them equal"
        )
    return bpy.path.abspath(strip.filepath), int(
        frame - strip.frame_start + getattr(strip, "animation_offset_start", 0)
    )


def capture(scene) -> None:
    """Grab the source image, then find its face, landmarks and expression (all asynchronous)."""
    props, name = scene.deepexpr, scene.name
    client = runtime.require_backend()
    out_dir = runtime.output_dir("captures")
    props.busy, props.status = True, "Capturing..."

    def analyse(image: str) -> None:
        sc = _scene(name)
        sc.deepexpr.captured_path = image
        sc.deepexpr.status = "Finding the face..."
        drawn = os.path.join(out_dir, f"landmarks-{int(time.time() * 1000)}.png")
        client.request("detect", {"image": image, "draw": drawn}, lambda r: shown(drawn), _fail(name, "Detection"))
        client.request("classify", {"image": image}, classified, _fail(name, "Classification"))

    def shown(drawn: str) -> None:
        sc = _scene(name)
        sc.deepexpr.preview_path = drawn
        img = bpy.data.images.get(CAPTURE_IMAGE)
        if img is None:
            img = bpy.data.images.load(drawn, check_existing=False)
            img.name = CAPTURE_IMAGE
        else:
            img.filepath = drawn
            img.reload()

    def classified(res: dict) -> None:
        sc = _scene(name)
        sc.deepexpr.expression = res["label"]
        sc.deepexpr.confidence = max(res["probabilities"].values())
        sc.deepexpr.busy = False
        sc.deepexpr.status = f"{res['label']} ({sc.deepexpr.confidence:.0%}), {res['faces_found']} face(s)"

    if props.source == "IMAGE":
        path = bpy.path.abspath(props.image_path)
        if not path:
            props.busy, props.status = False, "Choose an image first"
            raise KeyingError("Choose an image file first")
        analyse(path)
        return
    out = os.path.join(out_dir, f"capture-{int(time.time() * 1000)}.png")
    if props.source == "WEBCAM":
        params = {"source": props.webcam_index, "out": out}
    else:
        movie, frame = strip_source(scene)
        params = {"source": movie, "frame": frame, "out": out}
    client.request("capture", params, lambda r: analyse(r["path"]), _fail(name, "Capture"))


# ------------------------------------------------------------------------------------------ retrieval
def find_poses(scene) -> int:
    props, name = scene.deepexpr, scene.name
    if not props.captured_path:
        raise KeyingError("Capture a face first")
    params = {"image": props.captured_path, "top_k": props.top_k, "alpha": props.alpha, "beta": props.beta}
    root = library_root(scene)
    if root:
        params["library"] = root
    props.busy, props.status = True, "Finding poses..."

    def done(res: dict) -> None:
        sc = _scene(name)
        p = sc.deepexpr
        p.candidates.clear()
        for c in res["candidates"]:
            item = p.candidates.add()
            item.pose_id, item.label = c["id"], c.get("label") or ""
            item.score, item.js, item.geo = c["score"], c["js"], c["geo"]
            item.thumbnail, item.pose_json = c["thumbnail"], json.dumps(c["pose"])
        p.last_library = res["library"]
        p.expression = res["label"]
        p.busy, p.status = False, f"{len(res['candidates'])} poses from {res['library_size']} ({res['label']})"

    return runtime.require_backend().request("retrieve", params, done, _fail(name, "Retrieval"))


def key_candidate(scene, index: int) -> list[str]:
    props = scene.deepexpr
    if not 0 <= index < len(props.candidates):
        raise KeyingError("No such candidate: find poses first")
    c = props.candidates[index]
    keyed = key_pose(props.target, json.loads(c.pose_json), scene.frame_current, props.last_library)
    props.status = f"Keyed {c.pose_id} on {props.target.name} at frame {scene.frame_current}"
    return keyed


# ------------------------------------------------------------------------------------------ batch retrieval
class BatchRun:
    """State of one batch run: samples so far, and what has been keyed."""

    def __init__(self, scene, entries: dict[str, dict], library: str):
        self.scene_name = scene.name
        self.start_frame = scene.frame_current
        self.entries, self.library = entries, library
        self.samples: list[tuple[int, list[tuple[str, float]] | None]] = []
        self.keyed_starts: set[int] = set()
        self.no_face: list[int] = []
        self.request_id = -1
        self.done = False
        self.cancelled = False
        self.error: str | None = None

    def add(self, item: dict) -> None:
        frame = self.start_frame + item["index"] * item.get("step", 1)
        if item.get("ok"):
            self.samples.append((frame, [(c[0], c[1]) for c in item["candidates"]]))
        else:
            self.samples.append((frame, None))
            self.no_face.append(frame)
        self.key_new()

    def key_new(self) -> None:
        sc = _scene(self.scene_name)
        p = sc.deepexpr
        segs = smooth(self.samples, p.batch_min_hold, p.batch_hysteresis)
        prev = None
        for seg in segs:
            if seg.start not in self.keyed_starts:
                if prev is not None and seg.start - 1 > prev.start:
                    key_pose(p.target, self.entries[prev.pose_id]["pose"], seg.start - 1, self.library)  # hold
                key_pose(p.target, self.entries[seg.pose_id]["pose"], seg.start, self.library)
                self.keyed_starts.add(seg.start)
            prev = seg

    def report(self) -> str:
        segs = smooth(self.samples, *_smoothing(self.scene_name))
        state = "cancelled" if self.cancelled else ("failed: " + self.error if self.error else "done")
        no_face = ", ".join(map(str, self.no_face[:12])) + (" ..." if len(self.no_face) > 12 else "")
        return f"Batch {state}: {len(self.samples)} frames, {len(segs)} poses keyed" + (
            f"; no face at frames {no_face}" if self.no_face else ""
        )


def _smoothing(scene_name: str) -> tuple[int, float]:
    p = _scene(scene_name).deepexpr
    return p.batch_min_hold, p.batch_hysteresis


def start_batch(scene) -> BatchRun:
    props = scene.deepexpr
    if props.target is None:
        raise KeyingError("Pick the target character first")
    src = bpy.path.abspath(props.batch_input)
    if not src or not os.path.exists(src):
        raise KeyingError("Choose a video file or a folder of images as the batch input")
    params: dict = {
        "frame_step": props.batch_step,
        "top_k": max(props.top_k, 5),
        "alpha": props.alpha,
        "beta": props.beta,
    }
    if os.path.isdir(src):
        files = sorted(f for f in os.listdir(src) if f.lower().endswith((".png", ".jpg", ".jpeg", ".bmp", ".tif")))
        params["images"] = [os.path.join(src, f) for f in files]  # the backend samples every frame_step-th
    else:
        params["video"] = src
    root = library_root(scene)
    if root:
        params["library"] = root
    run = BatchRun(scene, {}, root)
    props.busy, props.status, props.progress = True, "Batch retrieval...", 0.0

    def progress(p: dict) -> None:
        sc = _scene(run.scene_name)
        if not run.entries:
            run.library = p["library"]
            run.entries = {e["id"]: e for e in library_format.load(p["library"])["entries"]}
        run.add(p["item"])
        sc.deepexpr.progress = p["done"] / max(p["total"], 1)
        sc.deepexpr.status = f"Batch: frame {p['done']} of {p['total']}"

    def finished(res: dict) -> None:
        run.done = True
        _finish(run)

    def failed(err: BackendError) -> None:
        run.done = True
        if err.name == "CANCELLED":
            run.cancelled = True
        else:
            run.error = str(err)
        _finish(run)

    run.request_id = runtime.require_backend().request("retrieve_batch", params, finished, failed, progress)
    return run


def _finish(run: BatchRun) -> None:
    sc = _scene(run.scene_name)
    sc.deepexpr.busy = False
    sc.deepexpr.batch_report = sc.deepexpr.status = run.report()


# ------------------------------------------------------------------------------------------ transitions
def start_transition(scene) -> dict:
    props, name = scene.deepexpr, scene.name
    source = bpy.path.abspath(props.seq_source or props.captured_path)
    if not source:
        raise KeyingError("Choose a source face image (or capture one)")
    out = runtime.output_dir("sequences", f"transition-{int(time.time() * 1000)}")
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
    state = {"done": False, "strip": None, "error": None, "start": scene.frame_current}
    props.busy, props.status, props.progress = True, "Generating the transition...", 0.0

    def progress(p: dict) -> None:
        sc = _scene(name)
        sc.deepexpr.progress = p["done"] / max(p["total"], 1)
        sc.deepexpr.status = f"Frame {p['done']} of {p['total']}"

    def finished(res: dict) -> None:
        sc = _scene(name)
        state["strip"] = add_image_strip(sc, res["frames"], state["start"], "DeepExpr transition")
        state["done"] = True
        sc.deepexpr.busy = False
        sc.deepexpr.status = f"Transition: {len(res['frames'])} frames on channel {state['strip'].channel}"

    def failed(err: BackendError) -> None:
        state["done"], state["error"] = True, str(err)
        _fail(name, "Transition")(err)

    state["id"] = runtime.require_backend().request("generate_sequence", params, finished, failed, progress)
    return state


def add_image_strip(scene, frames: list[str], start: int, name: str):
    """An image strip of ``frames`` at ``start`` on the lowest channel free over its frame range."""
    sed = scene.sequence_editor or scene.sequence_editor_create()
    end = start + len(frames)
    channel = 1
    while any(s.channel == channel and s.frame_final_start < end and s.frame_final_end > start for s in sed.strips_all):
        channel += 1
    strip = sed.strips.new_image(name=name, filepath=frames[0], channel=channel, frame_start=start)
    for f in frames[1:]:
        strip.elements.append(os.path.basename(f))
    return strip
