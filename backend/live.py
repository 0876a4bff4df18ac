"""Live mirror and streamed retrieval: frames from a webcam or a video file, tracked (``backend.tracking``),
ranked against a pose library, one result per frame.

- ``FrameSource`` reads frames in its own thread and keeps only the newest: a consumer slower than the camera
  gets the latest frame and the ones in between are counted as dropped, never queued. A video file plays at
  its own frame rate (its timestamps, so a variable frame rate is honoured) as the stand-in for a camera, or,
  with ``realtime=False``, frame by frame as fast as the consumer takes them (benchmarks, batch).
- ``FrameAnalyzer`` turns frames into results: track -> 68 landmarks -> aligned crops -> both networks in
  one batch -> rank. ``retrieve_batch`` uses it for videos, ``live`` for the mirror.
- ``run_live`` is the live request's loop (``backend/methods/live.py``): the request itself streams the
  results as ``$/progress`` notifications and runs until the client cancels it (``$/cancelRequest``), the
  file ends, ``max_seconds`` pass, or the source fails (then ``CAPTURE_FAILED`` with the results so far).

Per-actor neutral (the hook for "Capture my neutral"): ``neutral`` is the actor's neutral geometric features
(the ``geometry`` vector ``embed`` returns for a neutral face). When given, each frame's geometry is shifted by
(human mean - actor's neutral) before z-scoring, so a face that is naturally wide-mouthed or high-browed reads
as neutral at rest. Without it, the population statistics are used as before.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from deepexpr_blender.core import protocol

from .capture import parse_source
from .engine import FaceAnalysis
from .errors import DeepExprError
from .imageio import from_array
from .library import Library
from .retrieval import rank
from .scoring import Features, RetrievalWeights, human_geometry_stats, query_geometry, to_distribution
from .tracking import FaceTracker, TrackerConfig

log = logging.getLogger(__name__)

DEFAULT_FPS = 25.0


# ------------------------------------------------------------------------------------------ frame source
@dataclass
class Frame:
    index: int  # frame number in the source
    time: float  # seconds into the source (video timestamp; wall time since start for a camera)
    grabbed: float  # wall clock (time.time()) when the frame was read: latency is measured from here
    rgb: np.ndarray
    gray: np.ndarray | None = None  # made in the reader thread too, off the analysis thread


class FrameSource:
    """A webcam index or a video file read in a thread; ``next()`` gives the newest frame not yet taken."""

    def __init__(self, source: str | int, realtime: bool = True, stall_timeout: float = 2.0):
        self.source = parse_source(source)
        self.realtime = realtime
        self.stall_timeout = stall_timeout
        self.is_camera = isinstance(self.source, int)
        self.fps = DEFAULT_FPS
        self.frame_count = 0
        self.read = 0  # frames read from the source
        self.taken = 0  # frames handed to the consumer
        self.error: DeepExprError | None = None
        self.ended = False
        self._cap = None
        self._slot: Frame | None = None
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def dropped(self) -> int:
        """Frames read but never handed out (the consumer was busy): stale frames are dropped, not queued."""
        return max(0, self.read - self.taken - (1 if self._slot is not None else 0))

    def _fail(self, message: str) -> DeepExprError:
        return DeepExprError(protocol.CAPTURE_FAILED, message, {"source": str(self.source)})

    def open(self) -> FrameSource:
        src = self.source
        if not self.is_camera and "://" not in src and not os.path.isfile(src):
            raise self._fail(f"video file not found: {src}")
        self._cap = cap = cv2.VideoCapture(src)
        if not cap.isOpened():
            cap.release()
            if self.is_camera:
                raise self._fail(f"webcam {src} does not exist or is in use by another program")
            raise self._fail(f"cannot open video {src} (not a video, or a codec OpenCV lacks)")
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0)
        self.fps = fps if 1.0 <= fps <= 240.0 else DEFAULT_FPS
        self.frame_count = max(0, int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0))
        ok, img = cap.read()
        if not ok or img is None:
            cap.release()
            what = f"webcam {src} gives no frames" if self.is_camera else f"video {src} has no frames"
            raise self._fail(what)
        self._t0 = time.monotonic()
        self._first = (img, self._timestamp(0))
        self._thread = threading.Thread(target=self._run, name="deepexpr-frames", daemon=True)
        self._thread.start()
        return self

    def _timestamp(self, index: int) -> float:
        """Seconds into the source of the frame just read: the file's own timestamp (a variable frame rate is
        honoured), else index / fps; wall time for a camera."""
        if self.is_camera:
            return time.monotonic() - getattr(self, "_t0", time.monotonic())
        ms = self._cap.get(cv2.CAP_PROP_POS_MSEC)
        return ms / 1000.0 if ms and ms > 0 else index / self.fps

    def _put(self, frame: Frame) -> bool:
        with self._cond:
            if not self.realtime:  # lockstep: wait until the consumer took the previous frame
                while self._slot is not None and not self._stop.is_set():
                    self._cond.wait(0.05)
            self._slot = frame
            self.read += 1
            self._cond.notify_all()
        return not self._stop.is_set()

    def _run(self) -> None:
        img, t = self._first
        index = 0
        failures_since: float | None = None
        try:
            while not self._stop.is_set():
                if self.realtime and not self.is_camera:  # play the file at its own rate
                    delay = self._t0 + t - time.monotonic()
                    if delay > 0 and self._stop.wait(delay):
                        return
                grabbed = time.time()
                gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
                if not self._put(Frame(index, t, grabbed, cv2.cvtColor(img, cv2.COLOR_BGR2RGB), gray)):
                    return
                while True:
                    ok, img = self._cap.read()
                    if ok and img is not None:
                        failures_since = None
                        break
                    if not self.is_camera:
                        if self.frame_count and index + 1 < self.frame_count - 1:
                            self.error = self._fail(
                                f"the video stopped at frame {index + 1} of {self.frame_count} "
                                "(file truncated or damaged, or the camera was unplugged)"
                            )
                        else:
                            self.ended = True
                        return
                    failures_since = failures_since or time.monotonic()
                    if time.monotonic() - failures_since > self.stall_timeout:
                        self.error = self._fail(
                            f"webcam {self.source} stopped giving frames for {self.stall_timeout:.0f} s (unplugged?)"
                        )
                        return
                    if self._stop.wait(0.01):
                        return
                index += 1
                t = self._timestamp(index)
        except Exception as exc:  # a decoder crash ends the stream with a message, not a dead thread
            log.exception("frame reader failed")
            self.error = self._fail(f"reading {self.source} failed: {exc}")
        finally:
            with self._cond:
                self._cond.notify_all()

    def next(self, timeout: float = 0.1) -> Frame | None:
        """The newest frame not taken yet, waiting up to ``timeout``; None when there is none (check ``error``
        and ``ended``)."""
        with self._cond:
            if self._slot is None:
                self._cond.wait(timeout)
            frame, self._slot = self._slot, None
            if frame is not None:
                self.taken += 1
                self._cond.notify_all()
            return frame

    @property
    def finished(self) -> bool:
        """The reader stopped (end of file or an error) and every frame was taken."""
        return (self.ended or self.error is not None) and self._slot is None

    def close(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(2.0)
        if self._cap is not None:
            self._cap.release()


# ------------------------------------------------------------------------------------------ analysis
@dataclass
class FrameResult:
    """One frame's face and ranking, or ``ok=False`` when there is no face."""

    ok: bool
    analysis: FaceAnalysis | None = None
    detected: bool = False
    confidence: float = 0.0
    faces_found: int = 0
    label: str = ""
    probabilities: dict[str, float] = field(default_factory=dict)
    candidates: list[dict] = field(default_factory=list)


def neutral_offset(neutral: Iterable[float] | None) -> np.ndarray | None:
    """The per-actor shift of the geometric features (human mean - the actor's neutral), or None."""
    if neutral is None:
        return None
    mean, _ = human_geometry_stats()
    v = np.asarray(list(neutral), np.float64)
    if v.shape != mean.shape or not np.isfinite(v).all():
        raise DeepExprError(
            protocol.INVALID_PARAMS, f"neutral must be {len(mean)} finite geometric features (embed's 'geometry')"
        )
    return mean - v


STAGES = ("track", "align", "networks", "rank")


class FrameAnalyzer:
    """Frames in order -> ``FrameResult`` per frame, with one tracker and both networks run per batch."""

    def __init__(
        self,
        engine,
        library: Library,
        top_k: int = 5,
        weights: RetrievalWeights | None = None,
        tracking: TrackerConfig | None = None,
        neutral: Iterable[float] | None = None,
    ):
        self.engine = engine
        self.library = library
        self.index = engine.retriever.index(library)
        self.top_k = top_k
        self.weights = weights or RetrievalWeights()
        self.tracker = FaceTracker(engine.detector, engine.predictor, tracking)
        self.offset = neutral_offset(neutral)
        # CPU seconds of this thread per stage, summed over the frames analysed (benchmarks, docs/live.md):
        # track (detection when due, optical flow, landmarks), align (crops and geometry), networks, rank
        self.stage_seconds = dict.fromkeys(STAGES, 0.0)
        self.frames_analyzed = 0

    def analyze(self, frames: list[np.ndarray], grays: list[np.ndarray | None] | None = None) -> list[FrameResult]:
        """Results for consecutive frames (RGB arrays, with their grayscale versions when the reader made them):
        tracked one by one, then both networks once on all the faces (``Engine.crop_networks``: one trunk pass
        when the networks share it)."""
        found: list[tuple[int, FaceAnalysis, Any]] = []
        results = [FrameResult(ok=False) for _ in frames]
        clock, spent = time.thread_time, self.stage_seconds
        self.frames_analyzed += len(frames)
        t0 = clock()
        for i, rgb in enumerate(frames):
            dec = from_array(rgb)
            gray = grays[i] if grays is not None and dec.rgb is rgb else None
            if gray is None:
                gray = cv2.cvtColor(dec.rgb, cv2.COLOR_RGB2GRAY)
            tr = self.tracker.track(dec.rgb, gray)
            results[i].faces_found = self.tracker.faces_found
            if tr is None:
                continue
            h, w = dec.rgb.shape[:2]
            pts = tr.points68
            truncated = bool((pts < 0).any() or (pts[:, 0] >= w).any() or (pts[:, 1] >= h).any())
            fa = FaceAnalysis(decoded=dec, face=tr.face, points68=pts, truncated=truncated, gray=gray)
            found.append((i, fa, tr))
        t1 = clock()
        spent["track"] += t1 - t0
        if not found:
            return results
        nets = self.engine.crop_networks()
        fas = [fa for _, fa, _ in found]
        crops = {size: np.stack([fa.aligned(size).crop for fa in fas]) for size in nets.sizes}
        geos = [self.engine.geometry(fa).astype(np.float64) for fa in fas]
        t2 = clock()
        probs, emb = nets(crops)
        t3 = clock()
        classes = nets.expression.card.classes
        dist = to_distribution(emb)
        for (i, fa, tr), d, p, geo in zip(found, dist, probs, geos):
            if self.offset is not None:
                geo = geo + self.offset
            query = Features(d[None], query_geometry(geo)[None])
            r = results[i]
            r.ok, r.analysis, r.detected, r.confidence = True, fa, tr.detected, tr.confidence
            r.label = classes[int(p.argmax())]
            r.probabilities = {c: round(float(v), 5) for c, v in zip(classes, p)}
            r.candidates = rank(self.index, query, top_k=self.top_k, weights=self.weights)
        spent["align"] += t2 - t1
        spent["networks"] += t3 - t2
        spent["rank"] += clock() - t3
        return results

    def analyze_stream(self, frames: Iterable[tuple], batch: int = 8) -> Iterator[tuple[int, FrameResult]]:
        """(index, result) for each (index, frame) or (index, frame, gray frame), in order, ``batch`` frames per
        network pass."""
        chunk: list[tuple] = []
        for item in frames:
            chunk.append(item)
            if len(chunk) >= batch:
                yield from self._chunk(chunk)
                chunk = []
        if chunk:
            yield from self._chunk(chunk)

    def _chunk(self, chunk: list[tuple]) -> Iterator[tuple[int, FrameResult]]:
        grays = [item[2] if len(item) > 2 else None for item in chunk]
        return zip((item[0] for item in chunk), self.analyze([item[1] for item in chunk], grays))


class Prefetch:
    """Decode ahead in a thread: ``(index, rgb)`` items from ``frames`` become ``(index, rgb, gray)``, up to
    ``depth`` of them waiting, while the caller tracks and runs the networks (OpenCV's decoding and colour
    conversion release the GIL, so the two overlap on a second core). A context manager: leaving it stops and
    joins the thread, so the video can be closed right after."""

    _END = object()

    def __init__(self, frames: Iterable[tuple[int, np.ndarray]], depth: int = 16):
        self._frames = frames
        self._queue: queue.Queue = queue.Queue(depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="deepexpr-decode", daemon=True)

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            for k, rgb in self._frames:
                if not self._put((k, rgb, cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))):
                    return
            self._put(self._END)
        except Exception as exc:  # raised again in the consumer's thread
            self._put(exc)

    def __enter__(self) -> Prefetch:
        self._thread.start()
        return self

    def __iter__(self) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        while True:
            item = self._queue.get()
            if item is self._END:
                return
            if isinstance(item, Exception):
                raise item
            yield item

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def result_item(r: FrameResult, points: bool = True) -> dict:
    """A result as JSON: face box, landmarks and tracking state, expression, candidates as [id, score]."""
    if not r.ok:
        return {"ok": False, "error": "NO_FACE", "message": "no face in this frame", "faces_found": r.faces_found}
    fa = r.analysis
    item = {
        "ok": True,
        "box": [round(v / fa.decoded.scale) for v in fa.face.box],
        "tracked": "detected" if r.detected else "followed",
        "confidence": round(r.confidence, 3),
        "faces_found": r.faces_found,
        "truncated": fa.truncated,
        "label": r.label,
        "probabilities": r.probabilities,
        "candidates": [[c["id"], c["score"]] for c in r.candidates],
    }
    if points:
        item["points"] = np.round(fa.to_original(fa.points68), 1).tolist()
    return item


# ------------------------------------------------------------------------------------------ the live loop
# iBUG 68 contour groups (start, end, closed), drawn on the preview
_GROUPS = (
    (0, 17, 0),
    (17, 22, 0),
    (22, 27, 0),
    (27, 31, 0),
    (31, 36, 0),
    (36, 42, 1),
    (42, 48, 1),
    (48, 60, 1),
    (60, 68, 1),
)


def write_preview(rgb: np.ndarray, r: FrameResult | None, out: str, side: int = 320) -> None:
    """The frame, ``side`` pixels wide, with the tracked box and landmarks; written atomically (a reader never
    sees half a file)."""
    h, w = rgb.shape[:2]
    s = side / w
    img = cv2.resize(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), (side, round(h * s)), interpolation=cv2.INTER_AREA)
    if r is not None and r.ok:
        fa = r.analysis
        k = s / fa.decoded.scale
        l, t, rr, b = (round(v * k) for v in fa.face.box)
        color = (60, 220, 60) if r.detected else (40, 200, 255)
        cv2.rectangle(img, (l, t), (rr, b), color, 1)
        pts = np.round(fa.points68 * k).astype(np.int32)
        for a, e, closed in _GROUPS:
            cv2.polylines(img, [pts[a:e]], bool(closed), (255, 200, 40), 1, cv2.LINE_AA)
        cv2.putText(img, r.label, (l, max(10, t - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.4, color, 1, cv2.LINE_AA)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    root, ext = os.path.splitext(out)
    tmp = f"{root}.tmp{ext or '.jpg'}"
    if not cv2.imwrite(tmp, img):
        raise DeepExprError(protocol.INVALID_PARAMS, f"cannot write the preview {out}")
    os.replace(tmp, out)


@dataclass
class LiveConfig:
    top_k: int = 5
    realtime: bool = True  # a video file plays at its own rate (False: every frame, as fast as possible)
    max_seconds: float = 0.0  # 0: until cancelled or the source ends
    preview: str | None = None  # where the live view JPEG goes (None: no preview)
    preview_fps: float = 10.0  # previews written per second at most
    preview_side: int = 320
    stall_timeout: float = 2.0  # a camera silent this long is reported lost


def run_live(
    engine,
    source: str | int,
    library: Library,
    cfg: LiveConfig,
    weights: RetrievalWeights | None = None,
    tracking: TrackerConfig | None = None,
    neutral: Iterable[float] | None = None,
    emit: Callable[[int, int, dict], None] | None = None,
    check_cancelled: Callable[[dict], None] | None = None,
) -> dict:
    """Serve one live session: ``emit(done, total, item)`` per result; ``check_cancelled(partial)`` raises to
    stop. Returns the summary; a source failure raises CAPTURE_FAILED with the summary as ``partial``."""
    analyzer = FrameAnalyzer(engine, library, cfg.top_k, weights, tracking, neutral)
    src = FrameSource(source, cfg.realtime, cfg.stall_timeout).open()
    start = time.monotonic()
    stats = {"results": 0, "no_face": 0, "last_preview": 0.0, "end": "stopped"}

    def summary() -> dict:
        secs = time.monotonic() - start
        return {
            "library": library.root,
            "source": str(src.source),
            "fps": src.fps,
            "frame_count": src.frame_count,
            "frames_read": src.read,
            "results": stats["results"],
            "no_face": stats["no_face"],
            "dropped": src.dropped,
            "detections": analyzer.tracker.detections,
            "seconds": round(secs, 3),
            "results_per_s": round(stats["results"] / secs, 2) if secs > 0 else 0.0,
            "end": stats["end"],
        }

    try:
        while True:
            if check_cancelled:
                check_cancelled(summary())
            if cfg.max_seconds and time.monotonic() - start >= cfg.max_seconds:
                stats["end"] = "max_seconds"
                break
            frame = src.next(0.1)
            if frame is None:
                if src.error is not None:
                    stats["end"] = "error"
                    raise DeepExprError(src.error.code, src.error.message, {**src.error.data, "partial": summary()})
                if src.finished:
                    stats["end"] = "end of video"
                    break
                continue
            (r,) = analyzer.analyze([frame.rgb], [frame.gray])
            stats["results"] += 1
            stats["no_face"] += not r.ok
            item = {"frame": frame.index, "time": round(frame.time, 4), "grabbed": frame.grabbed, **result_item(r)}
            now = time.monotonic()
            if cfg.preview and cfg.preview_fps > 0 and now - stats["last_preview"] >= 1.0 / cfg.preview_fps:
                write_preview(frame.rgb, r, cfg.preview, cfg.preview_side)
                stats["last_preview"] = now
                item["preview"] = cfg.preview
            item["dropped"] = src.dropped
            item["sent"] = time.time()
            if emit:
                emit(stats["results"], src.frame_count, item)
    finally:
        src.close()
    return summary()
