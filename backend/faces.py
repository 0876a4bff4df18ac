"""Face detection (dlib HOG) and 68-point landmarks (dlib's shape predictor)."""

from __future__ import annotations

import importlib.util
import logging
import os
from dataclasses import dataclass

import numpy as np

from deepexpr_blender.core import protocol

from .errors import DeepExprError

log = logging.getLogger(__name__)

LANDMARK_MODEL_NAME = "shape_predictor_68_face_landmarks.dat"
MIN_FACE_SIDE = 16  # pixels: an image narrower than this holds no detectable face


def find_landmark_model() -> str:
    """Path of dlib's 68-point model shipped by ``face-recognition-models``.

    Found with importlib instead of importing the package, whose import needs ``pkg_resources``.
    """
    env = os.environ.get("DEEPEXPR_LANDMARK_MODEL")
    if env:
        return env
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise DeepExprError(
            protocol.MODEL_MISSING,
            "the face-recognition-models package is not installed; run the README's setup command",
            {"model": "landmarks"},
        )
    return os.path.join(list(spec.submodule_search_locations)[0], "models", LANDMARK_MODEL_NAME)


@dataclass
class Face:
    box: tuple[int, int, int, int]  # left, top, right, bottom in image pixels
    score: float  # detector confidence (HOG SVM margin); nan when the box was given
    faces_found: int  # how many faces the detector saw (1 when the box was given)

    @property
    def area(self) -> int:
        return max(0, self.box[2] - self.box[0]) * max(0, self.box[3] - self.box[1])


class FaceDetector:
    """dlib's HOG + linear SVM frontal face detector.

    Detection runs on a copy of the image downscaled so its longer side is at most ``detect_side`` pixels
    (HOG cost grows with the pixel count); boxes are mapped back to the full image.
    """

    def __init__(self, upsample: int = 0, detect_side: int = 480):
        import dlib

        self._detector = dlib.get_frontal_face_detector()
        self.upsample = upsample
        self.detect_side = detect_side

    @property
    def hog(self):
        """The dlib detector itself (made once: making one takes ~0.2 s)."""
        return self._detector

    def detect(self, rgb: np.ndarray) -> list[Face]:
        """All faces, largest first. Passes run from cheap to costly and stop at the first that finds a face:
        the image at ``detect_side``; then at full resolution; then, for images up to 1024 px, upsampled 2x.
        HOG needs faces of ~80 px, so only frames with small (or no) faces pay for the later passes."""
        import cv2

        h, w = rgb.shape[:2]
        if min(h, w) < MIN_FACE_SIDE:  # no face fits (and OpenCV's resizes would be empty)
            return []
        gray_full = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        passes = [(min(1.0, self.detect_side / max(h, w)), self.upsample)]
        if passes[0][0] < 1.0:
            passes.append((1.0, self.upsample))
        if self.upsample == 0 and max(h, w) <= 1024:
            passes.append((1.0, 1))
        rects, scores, s = [], [], 1.0
        for s, up in passes:
            gray = (
                cv2.resize(gray_full, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
                if s < 1
                else gray_full
            )
            rects, scores, _ = self._detector.run(gray, up, 0.0)
            if rects:
                break
        faces = [
            Face(
                box=(round(r.left() / s), round(r.top() / s), round(r.right() / s), round(r.bottom() / s)),
                score=float(sc),
                faces_found=len(rects),
            )
            for r, sc in zip(rects, scores)
        ]
        return sorted(faces, key=lambda f: f.area, reverse=True)

    def largest(self, rgb: np.ndarray) -> Face:
        faces = self.detect(rgb)
        if not faces:
            raise DeepExprError(protocol.NO_FACE, "no face found in the image")
        return faces[0]


class LandmarkPredictor:
    """dlib's 68-point shape predictor (iBUG 300-W markup, 0-based indices)."""

    def __init__(self, model_path: str | None = None):
        import dlib

        self.model_path = model_path or find_landmark_model()
        if not os.path.isfile(self.model_path):
            raise DeepExprError(
                protocol.MODEL_MISSING,
                f"landmark model not found: {self.model_path}",
                {"model": "landmarks", "path": self.model_path},
            )
        try:
            self._predictor = dlib.shape_predictor(self.model_path)
        except RuntimeError as exc:
            raise DeepExprError(
                protocol.MODEL_INVALID,
                f"landmark model {self.model_path} does not load: {exc}",
                {"model": "landmarks", "path": self.model_path},
            ) from None

    def predict(self, rgb: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
        """68x2 float array of (x, y) pixel coordinates."""
        import dlib

        rect = dlib.rectangle(*(int(v) for v in box))
        shape = self._predictor(np.ascontiguousarray(rgb), rect)
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)
