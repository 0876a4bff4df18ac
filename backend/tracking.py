"""Face tracking over a stream of frames, so the per-frame cost is landmarks, not detection.

The HOG detector (7-8 ms on a 640x480 frame) runs on the first frame, every ``detect_every`` frames, and
whenever tracking is lost or its confidence drops; in between the face is followed from the previous frame's
landmarks and dlib's shape predictor (0.8 ms) runs on a box derived from them:

- ``flow`` (the default, measured in docs/live.md): the 68 landmarks are carried to the new frame with
  pyramidal Lucas-Kanade optical flow, checked forward-backward; the box for the shape predictor is placed
  on the carried points. The forward-backward agreement is the tracking confidence: a face that leaves the
  frame or a cut to another picture loses its points at once.
- ``landmarks``: the box is the previous frame's landmarks' box (no image evidence between detections;
  confidence only from geometry: points inside the frame, box size steady).

Boxes from landmarks use the relation between the detector's box and the landmarks' extent measured at the
last detection, so the shape predictor sees boxes like the ones it was trained on.

Which face: at a detection the tracker keeps the face that overlaps the tracked box most (so a second face
walking in does not steal the track); when nothing is tracked it takes the largest face.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import cv2
import numpy as np

from .faces import Face

log = logging.getLogger(__name__)

MODES = ("flow", "landmarks", "detect")


@dataclass
class TrackerConfig:
    mode: str = "flow"  # flow | landmarks | detect (detect on every frame: the reference)
    detect_every: int = 10  # frames between detections while tracking (0: never, only when lost)
    detect_side: int = 480  # the detector sees the frame scaled to this longer side (one pass, no upsampling)
    min_confidence: float = 0.6  # below this, the next frame re-detects
    fb_tolerance: float = 0.02  # forward-backward error accepted, in units of the face's width
    flow_scale: float = 0.5  # optical flow runs on the frame scaled by this (faces stay over ~50 px)
    min_face: int = 40  # a tracked face narrower than this (pixels) is lost


@dataclass
class Track:
    """One frame's face: box and landmarks in the frame's pixels, whether it was detected or followed."""

    face: Face
    points68: np.ndarray
    detected: bool
    confidence: float  # 1 at a detection; the tracking confidence in between (0..1)
    faces_found: int  # faces the last detection saw


def iou(a, b) -> float:
    l, t = max(a[0], b[0]), max(a[1], b[1])
    r, bt = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0, r - l) * max(0, bt - t)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _extent(points: np.ndarray) -> np.ndarray:
    """(cx, cy, w, h) of the landmarks' bounding box."""
    lo, hi = points.min(axis=0), points.max(axis=0)
    return np.array([(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, hi[0] - lo[0], hi[1] - lo[1]])


class FaceTracker:
    """Detect, then follow one face from frame to frame (``track``); ``reset`` forgets it."""

    def __init__(self, detector, predictor, config: TrackerConfig | None = None):
        import dlib

        self.cfg = config or TrackerConfig()
        if self.cfg.mode not in MODES:
            raise ValueError(f"tracking mode must be one of {', '.join(MODES)}")
        self.predictor = predictor
        # the engine's dlib detector when it has one (making one costs ~0.2 s, once per request otherwise)
        self._hog = detector if hasattr(detector, "run") else getattr(detector, "hog", None)
        if self._hog is None:
            self._hog = dlib.get_frontal_face_detector()
        self.reset()
        self.detections = 0
        self.frames = 0

    def reset(self) -> None:
        self.prev_gray: np.ndarray | None = None
        self.prev: Track | None = None
        self.since_detect = 0
        # detector box relative to the landmarks' extent: (dx, dy) of the centre in extent units, (sw, sh) scale
        self.box_model = np.array([0.0, -0.08, 1.0, 1.0])
        self.faces_found = 0
        self.prev_small: np.ndarray | None = None

    # ------------------------------------------------------------------ detection
    def detect(self, gray: np.ndarray) -> list[Face]:
        """All faces, largest first: one HOG pass on the frame scaled to ``detect_side`` (then, if nothing was
        found and the frame is small, one at full size)."""
        h, w = gray.shape[:2]
        s = min(1.0, self.cfg.detect_side / max(h, w))
        passes = [s] + ([1.0] if s < 1.0 and max(h, w) <= 1024 else [])
        for s in passes:
            img = cv2.resize(gray, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA) if s < 1 else gray
            rects, scores, _ = self._hog.run(img, 0, 0.0)
            if rects:
                faces = [
                    Face(
                        (round(r.left() / s), round(r.top() / s), round(r.right() / s), round(r.bottom() / s)),
                        float(sc),
                        len(rects),
                    )
                    for r, sc in zip(rects, scores)
                ]
                return sorted(faces, key=lambda f: f.area, reverse=True)
        return []

    def _box_from_points(self, points: np.ndarray, w: int, h: int) -> tuple[int, int, int, int]:
        cx, cy, ew, eh = _extent(points)
        dx, dy, sw, sh = self.box_model
        bw, bh = ew * sw, eh * sh
        side = max(bw, bh)  # dlib's boxes are square
        x, y = cx + dx * ew, cy + dy * eh
        return (round(x - side / 2), round(y - side / 2), round(x + side / 2), round(y + side / 2))

    def _calibrate(self, face: Face, points: np.ndarray) -> None:
        cx, cy, ew, eh = _extent(points)
        l, t, r, b = face.box
        if ew < 4 or eh < 4:
            return
        self.box_model = np.array([((l + r) / 2 - cx) / ew, ((t + b) / 2 - cy) / eh, (r - l) / ew, (b - t) / eh])

    # ------------------------------------------------------------------ tracking
    def track(self, rgb: np.ndarray, gray: np.ndarray | None = None) -> Track | None:
        """The tracked face in this frame, or None (no face). Frames must come in order."""
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) if gray is None else gray
        self.frames += 1
        out = None
        due = (
            self.prev is None
            or self.cfg.mode == "detect"
            or self.prev.confidence < self.cfg.min_confidence
            or (self.cfg.detect_every and self.since_detect >= self.cfg.detect_every)
        )
        small = self._small(gray)
        if not due:
            out = self._follow(rgb, gray, small)
        if out is None:
            out = self._detect_and_fit(rgb, gray)
        self.prev, self.prev_gray, self.prev_small = out, gray, small
        return out

    def _detect_and_fit(self, rgb: np.ndarray, gray: np.ndarray) -> Track | None:
        self.detections += 1
        self.since_detect = 0
        faces = self.detect(gray)
        self.faces_found = len(faces)
        if not faces:
            return None
        face = faces[0]
        if self.prev is not None and len(faces) > 1:  # keep the face we were following
            best = max(faces, key=lambda f: iou(f.box, self.prev.face.box))
            if iou(best.box, self.prev.face.box) > 0.1:
                face = best
        pts = self.predictor.predict(rgb, face.box)
        self._calibrate(face, pts)
        return Track(face, pts, True, 1.0, len(faces))

    def _small(self, gray: np.ndarray) -> np.ndarray:
        """The frame optical flow sees (scaled by ``flow_scale``)."""
        k = self.cfg.flow_scale
        if self.cfg.mode != "flow" or k == 1.0:
            return gray
        h, w = gray.shape[:2]
        return cv2.resize(gray, (round(w * k), round(h * k)), interpolation=cv2.INTER_AREA)

    def _follow(self, rgb: np.ndarray, gray: np.ndarray, small: np.ndarray) -> Track | None:
        self.since_detect += 1
        h, w = gray.shape[:2]
        prev = self.prev.points68
        face_w = max(1.0, float(np.ptp(prev[:, 0])))
        confidence = 1.0
        if self.cfg.mode == "flow":
            k = small.shape[1] / gray.shape[1]
            p0 = (prev * k).astype(np.float32).reshape(-1, 1, 2)
            lk = dict(
                winSize=(15, 15), maxLevel=2, criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 0.03)
            )
            p1, st, _ = cv2.calcOpticalFlowPyrLK(self.prev_small, small, p0, None, **lk)
            pb, st2, _ = cv2.calcOpticalFlowPyrLK(small, self.prev_small, p1, None, **lk)
            p1 = p1 / k
            fb = np.linalg.norm((pb - p0).reshape(-1, 2), axis=1) / (face_w * k)
            good = (st.ravel() == 1) & (st2.ravel() == 1) & (fb < self.cfg.fb_tolerance)
            confidence = float(good.mean())
            if good.sum() < 10:
                return None
            # the whole face moves with its well-tracked points (a similarity: shift, turn, scale)
            m, _ = cv2.estimateAffinePartial2D(prev[good].astype(np.float32), p1.reshape(-1, 2)[good])
            if m is None:
                carried = prev + np.median(p1.reshape(-1, 2)[good] - prev[good], axis=0)
            else:
                carried = prev @ m[:, :2].T + m[:, 2]
        else:
            carried = prev
        box = self._box_from_points(carried, w, h)
        if box[2] - box[0] < self.cfg.min_face:
            return None
        pts = self.predictor.predict(rgb, box)
        inside = float(((pts[:, 0] >= 0) & (pts[:, 0] < w) & (pts[:, 1] >= 0) & (pts[:, 1] < h)).mean())
        scale = float(np.ptp(pts[:, 0])) / face_w
        steady = 1.0 if 0.8 < scale < 1.25 else 0.0
        confidence = min(confidence, inside, steady)
        if inside < 0.5:
            return None
        return Track(Face(box, float("nan"), self.faces_found), pts, False, confidence, self.faces_found)
