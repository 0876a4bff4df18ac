"""Live mirror and sparse key poses.

**Live**: one long-running ``live`` request; its results arrive as ``$/progress`` through the session's client
queue and are handled when it is drained (the session timer, or the Live operator's faster modal timer; tests
call ``connection.drain()``): nothing here waits on the backend, so the UI never freezes. Each result moves the
smoother (``core.smoothing.OnlineSmoother``: minimum hold, hysteresis, on the camera's clock) and the target
wears the chosen pose, blended from the previous one over ``blend`` seconds (shape-key poses; other kinds swap).
The candidate list is updated in place (rebuilt only when its poses change), the live view image is reloaded
when the backend rewrote it.

**Record**: pose changes are keyed at the scene frame on a real-time clock (the frame the result's camera frame
was grabbed at, counted from the frame Record started on, at the scene's frame rate), with the same smoothing:
the old pose is keyed where the change starts and the new one where its blend ends. Stopping the recording
(Stop, Esc, an error, the end of the video) keys the hold at the end and pushes one undo step; keys recorded so
far are always kept.

**Sparse keys**: the trajectory of a performance (a video through ``retrieve_batch``, every frame; or the last
recorded take) goes to the backend's ``key_poses`` (penalised change-point segmentation, backend/keyposes.py);
only the key poses it returns are keyed, with Bézier (auto-clamped: holds stay flat, changes ease in and out)
or constant interpolation (2D image swaps), and its report is shown.
"""

from __future__ import annotations

import logging
import os
import statistics
import time

import bpy

from .. import compat, jobs, messages, paths, poses, status
from ..client import BackendError
from ..core.smoothing import OnlineSmoother
from ..core.vocabulary import LABELS
from ..errors import CaptureError, KeyingError, PoseError, WorkflowError
from ..props import retrieval_params
from ..session import connection

log = logging.getLogger(__name__)

LIVE_IMAGE = "DeepExpr Live"
CANDIDATE_REFRESH = 0.5  # seconds between rebuilds of the candidate list when its poses change

_sessions: dict[str, LiveSession] = {}  # the running session per scene name
_takes: dict[str, dict] = {}  # the last recorded take per scene name: {"library": root, "take": [...]}


class LiveSession:
    """One live run on one scene."""

    def __init__(self, scene, library: str):
        lp = scene.deepexpr_live
        self.scene_name = scene.name
        self.library = library
        self.entries: dict[str, dict] = {}
        self.smoother = OnlineSmoother(lp.min_hold, lp.hysteresis)
        self.blend_time = lp.blend
        self.request_id = -1
        self.running = True
        self.end_message = ""
        self.results = 0
        self.no_face = 0
        self.latencies: list[float] = []  # seconds from frame grabbed to pose applied
        self.started = time.monotonic()
        self.last_t = 0.0
        self.last_refresh = 0.0
        self.faces_found = 0
        # recording
        self.recording = False
        self.rec_wall = 0.0
        self.rec_frame = 0
        self.rec_last_frame = -(10**9)
        self.rec_keys: list[tuple[int, str]] = []
        self.take: list[tuple[int, list[float], list]] = []

    # ------------------------------------------------------------------ results
    def on_progress(self, p: dict) -> None:
        if not self.running:
            return
        sc = jobs.scene(self.scene_name)
        if sc is None:
            return
        lp = sc.deepexpr_live
        if p.get("stage") == "index":  # the backend indexes a new library before the first frame
            lp.status = f"Indexing the library: {p['done']} of {p['total']} poses"
            return
        if not self.entries:
            self.library = p.get("library") or self.library
            self.entries = {e["id"]: e for e in poses.load_library(self.library)["entries"]}
        item = p["item"]
        self.results += 1
        self.last_t = float(item.get("time", 0.0))
        self.faces_found = item.get("faces_found", 0)
        if item.get("ok"):
            cands = [(c[0], float(c[1])) for c in item["candidates"]]
            changed = self.smoother.push(self.last_t, cands)
            lp.expression = item["label"]
            lp.confidence = max(item["probabilities"].values())
            self._update_candidates(lp, item["candidates"])
            if self.recording:
                frame = self.record_frame(sc, item["grabbed"])
                probs = [item["probabilities"].get(label, 0.0) for label in LABELS]
                self.take.append((frame, probs, item["candidates"]))
                if changed:
                    self._key_change(sc, frame)
            many = f", {self.faces_found} faces: following the tracked one" if self.faces_found > 1 else ""
            lp.status = f"Live: {item['label']} -> {self.smoother.current}{many}"
        else:
            self.no_face += 1
            lp.status = "Live: no face in view (the character holds its pose)"
        self._apply(sc)
        self.latencies.append(time.time() - float(item["grabbed"]))
        self.latencies = self.latencies[-200:]
        lp.pose_id = self.smoother.current or ""
        lp.latency = 1000 * statistics.median(self.latencies)
        lp.rate = self.results / max(1e-3, time.monotonic() - self.started)
        if "preview" in item:
            show_preview(item["preview"])

    def _update_candidates(self, lp, cands: list) -> None:
        """Without flicker: while the same poses are the top-k, their rows stay where they are and only the
        scores change (the worn pose is marked); the list is rebuilt when its poses change, at most every
        ``CANDIDATE_REFRESH`` seconds."""
        scores = {c[0]: c[1] for c in cands}
        if lp.candidates and {c.pose_id for c in lp.candidates} == set(scores):
            for row in lp.candidates:
                row.score = scores[row.pose_id]
            return
        now = time.monotonic()
        if lp.candidates and now - self.last_refresh < CANDIDATE_REFRESH:
            return
        self.last_refresh = now
        lp.candidates.clear()
        for pid, score in cands:
            e = self.entries.get(pid, {})
            row = lp.candidates.add()
            row.pose_id, row.label, row.score = pid, e.get("label") or "", score
            if e.get("thumbnail"):
                row.thumbnail = os.path.join(self.library, e["thumbnail"])

    def _pose(self, pose_id: str | None) -> dict | None:
        e = self.entries.get(pose_id or "")
        return e["pose"] if e else None

    def _apply(self, sc) -> None:
        """The target wears the current pose, blended from the previous one while the change is under way."""
        target = sc.deepexpr.target
        cur = self._pose(self.smoother.current)
        if target is None or cur is None:
            return
        w = self.smoother.blend(self.last_t, self.blend_time)
        prev = self._pose(self.smoother.previous)
        try:
            apply_blend(target, prev, cur, w, self.library)
        except (KeyingError, PoseError) as err:  # the target cannot wear it: say so, keep running
            sc.deepexpr_live.error = str(err)

    # ------------------------------------------------------------------ recording
    def record_frame(self, sc, grabbed: float) -> int:
        fps = sc.render.fps / sc.render.fps_base
        return self.rec_frame + max(0, round((grabbed - self.rec_wall) * fps))

    def _key(self, sc, pose_id: str | None, frame: int) -> None:
        pose = self._pose(pose_id)
        target = sc.deepexpr.target
        if pose is None or target is None:
            return
        frame = max(frame, self.rec_last_frame + 1)
        poses.key_pose(target, pose, frame, self.library)
        self.rec_last_frame = frame
        self.rec_keys.append((frame, pose_id))
        sc.deepexpr_live.keys_recorded = len(self.rec_keys)

    def _key_change(self, sc, frame: int) -> None:
        """A change of pose while recording: the old pose held until here, the new one reached after the blend
        (2D swaps: at once)."""
        cur = self._pose(self.smoother.current)
        fps = sc.render.fps / sc.render.fps_base
        if self.smoother.previous is not None and cur is not None and cur.get("type") != "image":
            self._key(sc, self.smoother.previous, frame)
            frame += max(1, round(self.blend_time * fps))
        self._key(sc, self.smoother.current, frame)

    def start_recording(self, sc) -> None:
        self.recording = True
        self.rec_wall, self.rec_frame = time.time(), sc.frame_current
        self.rec_keys, self.take = [], []
        self.rec_last_frame = -(10**9)
        sc.deepexpr_live.recording = True
        sc.deepexpr_live.keys_recorded = 0
        if self.smoother.current is not None:
            self._key(sc, self.smoother.current, self.rec_frame)

    def stop_recording(self, sc) -> None:
        """Key the hold at the end, keep the take for sparse keys, one undo step for the whole recording."""
        if not self.recording:
            return
        self.recording = False
        if sc is None:
            return
        sc.deepexpr_live.recording = False
        try:
            end = self.record_frame(sc, time.time())
            if self.rec_keys and end > self.rec_last_frame:
                self._key(sc, self.smoother.current, end)
        except (KeyingError, PoseError) as err:
            log.warning("DeepExpr live: the last hold was not keyed: %s", err)
        if self.take:
            _takes[sc.name] = {"library": self.library, "take": self.take}
        if self.rec_keys:
            try:
                bpy.ops.ed.undo_push(message="DeepExpr live recording")
            except RuntimeError:  # no window (background mode): nothing to push to
                pass

    # ------------------------------------------------------------------ end
    def end(self, message: str, error: bool = False) -> None:
        """Stop everything on this scene's side; keys recorded so far stay."""
        if not self.running:
            return
        self.running = False
        _sessions.pop(self.scene_name, None)
        sc = jobs.scene(self.scene_name)
        if sc is not None:
            self.stop_recording(sc)
            lp = sc.deepexpr_live
            lp.running = False
            kept = f" {len(self.rec_keys)} keys recorded were kept." if self.rec_keys else ""
            lp.status = message + kept
            lp.error = (message + kept) if error else ""
        self.end_message = message
        status.redraw()


def apply_blend(target, prev: dict | None, cur: dict, w: float, library: str) -> None:
    """Pose ``target``: ``cur``, or between ``prev`` and ``cur`` at ``w`` (0..1) for two shape-key poses."""
    poses.check_target(target, cur, library)
    if cur.get("type") == "image":
        show_drawing(target, cur, library)
        return
    if prev is not None and w < 1.0 and prev.get("type") == cur.get("type") == "shape_keys":
        names = set(prev["values"]) | set(cur["values"])
        values = {n: (1 - w) * prev["values"].get(n, 0.0) + w * cur["values"].get(n, 0.0) for n in names}
        poses.apply_pose({**cur, "values": values}, target)
        return
    poses.apply_pose(cur, target)


def show_drawing(target, pose: dict, library: str) -> None:
    """2D swaps live: show the drawing if the holder already has it (Record keys it in), hide the others."""
    path = pose["path"] if os.path.isabs(pose["path"]) else os.path.join(library, pose["path"])
    kids = [c for c in target.children if "deepexpr_image" in c]
    if any(c["deepexpr_image"] == path for c in kids):
        for c in kids:
            c.hide_viewport = c["deepexpr_image"] != path


def show_preview(path: str) -> None:
    """Load or reload the live view image (``DeepExpr Live``)."""
    if not os.path.isfile(path):
        return
    img = bpy.data.images.get(LIVE_IMAGE)
    if img is None:
        img = bpy.data.images.load(path, check_existing=False)
        img.name = LIVE_IMAGE
    elif bpy.path.abspath(img.filepath) != path:
        img.filepath = path
    img.reload()
    if img.preview is not None:
        img.preview.reload()


# ---------------------------------------------------------------------------------------------- live control
def session(scene) -> LiveSession | None:
    return _sessions.get(scene.name)


def start_live(scene) -> LiveSession:
    """Start the live mirror on ``scene`` (asynchronous: results arrive through the client's queue)."""
    lp = scene.deepexpr_live
    if scene.name in _sessions:
        raise WorkflowError("Live mode is already running; Stop it first")
    if lp.source == "VIDEO":
        source: int | str = bpy.path.abspath(lp.video)
        if not source or not os.path.isfile(source):
            raise CaptureError("Choose the video file to play as the live source")
    else:
        source = lp.webcam_index
    root = paths.library_root(scene)
    params: dict = {
        "source": source,
        "top_k": scene.deepexpr.top_k,
        **retrieval_params(scene.deepexpr),
        "preview": os.path.join(paths.output_dir("live"), "live_view.jpg"),
    }
    if root:
        params["library"] = root
    client = connection.require_backend()
    sess = LiveSession(scene, root)
    _sessions[scene.name] = sess
    lp.running, lp.recording, lp.error, lp.keys_recorded = True, False, "", 0
    lp.status = "Live: starting..."
    lp.candidates.clear()

    def finished(res: dict) -> None:
        sess.end(f"Live ended ({res.get('end', 'done')}: {res.get('results', 0)} results)")

    def failed(err: BackendError) -> None:
        if err.name == "CANCELLED":
            sess.end("Live stopped")
        elif err.name == "BACKEND_UNAVAILABLE":
            sess.end(f"Live stopped: the backend stopped ({err}). Check backend to restart it", error=True)
        else:
            sess.end(f"Live stopped: {err}", error=True)

    sess.request_id = client.request("live", params, finished, failed, sess.on_progress)
    if sess.request_id < 0 and sess.running:
        sess.end("Live could not start", error=True)
    return sess


def stop_live(scene, message: str = "Live stopped") -> None:
    """Stop live mode: the backend's request is cancelled, the scene's side ends now (keys kept)."""
    sess = _sessions.get(scene.name)
    if sess is None:
        return
    if sess.request_id >= 0:
        connection.get_client().cancel(sess.request_id)
    sess.end(message)


def toggle_record(scene) -> bool:
    """Start or stop recording; returns whether it records now."""
    sess = _sessions.get(scene.name)
    if sess is None:
        raise WorkflowError("Start live mode first")
    if scene.deepexpr.target is None:
        raise KeyingError("Pick the target character first")
    if sess.recording:
        sess.stop_recording(scene)
        scene.deepexpr_live.status = f"Recorded {len(sess.rec_keys)} keys"
    else:
        sess.start_recording(scene)
    return sess.recording


def stop_all(message: str) -> None:
    for name in list(_sessions):
        sc = jobs.scene(name)
        if sc is not None:
            stop_live(sc, message)
        else:
            _sessions.pop(name).running = False


def forget_takes() -> None:
    """The recorded takes belong to the file they were recorded in."""
    _takes.clear()


# ---------------------------------------------------------------------------------------------- sparse keys
class SparseJob(jobs.Job):
    """A performance turned into key poses: trajectory (from a video or a take), key_poses, keying."""

    kind = "sparse"
    title = "Sparse keys"
    cancellable = True

    def __init__(self, scene, text: str):
        super().__init__(scene, text)
        self.start_frame = scene.frame_current
        self.library = paths.library_root(scene)
        self.frames: list[int] = []
        self.probs: list[list[float]] = []
        self.candidates: list[list] = []
        self.result: dict | None = None
        self.keyed: list[tuple[int, str, str]] = []  # (frame, kind, pose id)

    def fail(self, err) -> None:
        """End with an error (a message, a backend error or an exception); the report says it too."""
        if isinstance(err, BackendError):
            message = messages.explain(err, self.title)
        else:
            message = err if isinstance(err, str) else f"{self.title} failed. {err}"
        sc = self.scene()
        if sc is not None and not self.done:
            sc.deepexpr_live.sparse_report = message
        super().fail(message)


def start_sparse(scene) -> SparseJob:
    props, lp = scene.deepexpr, scene.deepexpr_live
    if props.target is None:
        raise KeyingError("Pick the target character first")
    client = connection.require_backend()
    if lp.sparse_source == "TAKE":
        last = _takes.get(scene.name)
        if not last:
            raise WorkflowError("No recorded take: record one in live mode first")
        job = SparseJob(scene, "Sparse keys: finding the key poses...")
        job.library = last["library"]
        for frame, probs, cands in last["take"]:
            job.frames.append(frame)
            job.probs.append(probs)
            job.candidates.append(cands)
        _request_keys(job, client)
        return job
    video = bpy.path.abspath(lp.sparse_video)
    if not video or not os.path.isfile(video):
        raise WorkflowError("Choose the performance video")
    job = SparseJob(scene, "Sparse keys: reading the performance...")
    params: dict = {"video": video, "frame_step": 1, "top_k": 5, **retrieval_params(props)}
    if job.library:
        params["library"] = job.library

    def progress(p: dict) -> None:
        if job.indexing(p):
            return
        job.library = p["library"]
        item = p["item"]
        if item.get("ok"):
            job.frames.append(job.start_frame + item["index"] * item.get("step", 1))
            job.probs.append([round(item["probabilities"].get(label, 0.0), 4) for label in LABELS])
            job.candidates.append(item["candidates"])
        job.progress(p["done"], p["total"], f"Sparse keys: frame {p['done']} of {p['total']}")

    def read(res: dict) -> None:
        if not job.frames:
            job.fail(WorkflowError("no face in any frame of the video"))
            return
        _request_keys(job, client)

    job.request_id = client.request("retrieve_batch", params, job.guard(read), job.on_error, job.guard(progress))
    return job


def _request_keys(job: SparseJob, client) -> None:
    sc = jobs.scene(job.scene_name)
    lp = sc.deepexpr_live
    params = {
        "frames": job.frames,
        "probabilities": job.probs,
        "labels": list(LABELS),
        "candidates": job.candidates,
        "density": lp.density,
        "breakdowns": lp.breakdowns,
    }

    def keyed(res: dict) -> None:
        try:
            key_sparse(job, res)
        except Exception as err:  # keys made so far stay; the panel says what stopped it
            log.exception("DeepExpr: keying the sparse poses failed")
            job.fail(err)

    job.request_id = client.request("key_poses", params, job.guard(keyed), job.on_error)


def key_sparse(job: SparseJob, res: dict) -> None:
    """Key the key poses on the target with fitting interpolation; the report lands in the panel."""
    sc = jobs.scene(job.scene_name)
    props, lp = sc.deepexpr, sc.deepexpr_live
    target = props.target
    entries = {e["id"]: e for e in poses.load_library(job.library)["entries"]}
    for k in res["keys"]:
        e = entries.get(k.get("pose_id") or "")
        if e is None:
            continue
        poses.key_pose(target, e["pose"], int(k["frame"]), job.library)
        job.keyed.append((int(k["frame"]), k["kind"], e["id"]))
    set_interpolation(target, {f for f, _, _ in job.keyed}, job.keyed and entries[job.keyed[0][2]]["pose"])
    job.result = res
    r = res["report"]
    lp.sparse_report = (
        f"{len(job.keyed)} keys for {r['dense_keys']} frames (dense: {r['dense_keys']} keys, "
        f"{100 * len(job.keyed) / max(1, r['dense_keys']):.0f}%); {r['segments']} held expressions; "
        f"trajectory distance {r['tv_error']:.3f} mean, {r['tv_error_max']:.2f} max; labels agree "
        f"{100 * r['label_agreement']:.0f}%"
    )
    job.finish("Sparse keys: " + lp.sparse_report)
    try:
        bpy.ops.ed.undo_push(message="DeepExpr sparse keys")
    except RuntimeError:
        pass


def set_interpolation(target, frames: set[int], pose) -> None:
    """Bézier with auto-clamped handles on the new keys (holds flat, changes eased), constant for 2D swaps."""
    if not pose or pose.get("type") == "image":
        return  # image swaps are keyed constant by their kind
    kind = poses.kind_of(pose)
    for fc in compat.action_fcurves(kind.animated_id(target)):
        for kp in fc.keyframe_points:
            if round(kp.co.x) in frames:
                kp.interpolation = "BEZIER"
                kp.handle_left_type = kp.handle_right_type = "AUTO_CLAMPED"
        fc.update()
