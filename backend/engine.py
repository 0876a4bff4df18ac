"""The perception engine: decode -> detect -> 68 landmarks -> align -> geometric features / embed / classify.

Models are loaded once, when the engine is made; each public method takes an image path and returns plain,
JSON-ready data. Coordinates in results are in the original image's pixels (after EXIF orientation).
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field

import numpy as np
import torch

from deepexpr_blender.core import protocol

from . import __version__, calibration, outputs
from .align import Aligned, align_face68
from .config import option
from .errors import DeepExprError
from .faces import Face, FaceDetector, LandmarkPredictor
from .geometry import FEATURE_NAMES, geometric_features
from .imageio import Decoded, decode_image
from .landmarks import semantic_from_68
from .models import CLASSES, CROP_MEAN, CROP_STD, LoadedModel, load_model, normalize_crops, resolve_device

log = logging.getLogger(__name__)

WEIGHTS_DIR = os.path.join(os.path.dirname(__file__), "weights")
DEFAULT_EXPRESSION_MODEL = os.path.join(WEIGHTS_DIR, "expression_human.safetensors")
DEFAULT_CHARACTER_MODEL = os.path.join(WEIGHTS_DIR, "expression_character.safetensors")
DEFAULT_GAN_MODEL = os.path.join(WEIGHTS_DIR, "expression_gan.safetensors")


DEVICES = ("auto", "cpu", "cuda")


@dataclass
class EngineConfig:
    """What the engine loads and how it detects (the CLI's global options)."""

    device: str = option("auto", "torch device; auto takes CUDA when there is a GPU", choices=DEVICES)
    expression_model: str | None = option(
        DEFAULT_EXPRESSION_MODEL,
        "expression network (.safetensors, its card beside it); without one, detection and alignment only",
        env="DEEPEXPR_EXPRESSION_MODEL",
    )
    detect_side: int = option(480, "longer side of the image the HOG detector sees (cost grows with its area)")
    upsample: int = option(0, "dlib HOG upsampling passes (finds smaller faces, 4x slower per pass)")
    landmark_model: str | None = option(None, "dlib 68-point model; default: the face-recognition-models file")
    character_model: str | None = option(
        DEFAULT_CHARACTER_MODEL,
        "shared human/character network used for retrieval; when absent, the expression network serves both sides",
        env="DEEPEXPR_CHARACTER_MODEL",
    )
    gan_model: str = option(
        DEFAULT_GAN_MODEL,
        "landmark-guided expression GAN (.safetensors), loaded on first use",
        env="DEEPEXPR_GAN_MODEL",
    )


@dataclass
class FaceAnalysis:
    """One image's face: everything later stages need, in processed-image pixels."""

    decoded: Decoded
    face: Face
    points68: np.ndarray
    truncated: bool = False  # some landmarks fall outside the image (face cut by the border)
    _aligned: dict[int, Aligned] = field(default_factory=dict)

    def aligned(self, size: int) -> Aligned:
        if size not in self._aligned:
            self._aligned[size] = align_face68(self.decoded.rgb, self.points68, size=size)
        return self._aligned[size]

    def to_original(self, pts: np.ndarray) -> np.ndarray:
        return np.asarray(pts, dtype=np.float64) / self.decoded.scale

    def describe(self) -> dict:
        s = self.decoded.scale
        return {
            "image_size": list(self.decoded.original_size),
            "downscaled": self.decoded.downscaled,
            "processing_scale": s,
            "faces_found": self.face.faces_found,
            "box": [round(v / s) for v in self.face.box],
            "score": None if np.isnan(self.face.score) else round(self.face.score, 4),
            "truncated": self.truncated,
        }


class Engine:
    def __init__(self, cfg: EngineConfig | None = None):
        self.cfg = cfg = cfg or EngineConfig()
        self.device = resolve_device(cfg.device)
        self.detector = FaceDetector(upsample=cfg.upsample, detect_side=cfg.detect_side)
        self.predictor = LandmarkPredictor(cfg.landmark_model)
        self._expression: LoadedModel | None = None
        self._expression_error: DeepExprError | None = None
        try:
            if cfg.expression_model is None:
                raise DeepExprError(protocol.MODEL_MISSING, "this engine was made without an expression model")
            self._expression = load_model(cfg.expression_model, "expression", self.device)
        except DeepExprError as exc:  # the engine still detects and aligns; classify/embed report this error
            self._expression_error = exc
            log.info("%s", exc)
        self._character: LoadedModel | None = None
        if cfg.character_model and os.path.exists(cfg.character_model):
            self._character = load_model(cfg.character_model, "character", self.device)
        self._retriever = None
        self._gan: LoadedModel | None = None

    # ----------------------------------------------------------------- info
    def info(self) -> dict:
        models = {
            "landmarks": {"path": self.predictor.model_path, "loaded": True},
            "expression": (
                {
                    "path": self._expression.path,
                    "sha256": self._expression.sha256,
                    "loaded": True,
                    "architecture": self._expression.card.architecture,
                }
                if self._expression
                else {"path": self.cfg.expression_model, "loaded": False, "error": str(self._expression_error)}
            ),
        }
        if self._character:
            models["character"] = {
                "path": self._character.path,
                "sha256": self._character.sha256,
                "loaded": True,
                "architecture": self._character.card.architecture,
            }
        return {
            "backend_version": __version__,
            "protocol_version": protocol.PROTOCOL_VERSION,
            "torch_version": torch.__version__,
            "device": str(self.device),
            "threads": torch.get_num_threads(),
            "models": models,
        }

    @property
    def expression(self) -> LoadedModel:
        if self._expression is None:
            raise self._expression_error or DeepExprError(protocol.MODEL_MISSING, "no expression model")
        return self._expression

    @property
    def retrieval_model(self) -> LoadedModel:
        """The shared human/character network when one is installed, else the human network."""
        return self._character or self.expression

    # ----------------------------------------------------------------- pipeline
    def analyze(self, image: str | Decoded, box: list[int] | tuple[int, ...] | None = None) -> FaceAnalysis:
        dec = image if isinstance(image, Decoded) else decode_image(image)
        h, w = dec.rgb.shape[:2]
        if box is not None:
            if len(box) != 4 or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in box):
                raise DeepExprError(protocol.INVALID_PARAMS, "box must be [left, top, right, bottom], finite numbers")
            l, t, r, b = (round(v * dec.scale) for v in box)
            if r - l < 8 or b - t < 8:
                raise DeepExprError(protocol.INVALID_PARAMS, f"box {list(box)} is empty or under 8 pixels")
            if r <= 0 or b <= 0 or l >= w or t >= h or r - l > 4 * w or b - t > 4 * h:
                ow, oh = dec.original_size
                raise DeepExprError(
                    protocol.INVALID_PARAMS, f"box {list(box)} does not frame a face in the {ow}x{oh} image"
                )
            face = Face(box=(l, t, r, b), score=float("nan"), faces_found=1)
        else:
            face = self.detector.largest(dec.rgb)
        pts = self.predictor.predict(dec.rgb, face.box)
        l, t, r, b = face.box
        margin = 0.02 * (r - l)  # the detector's box pokes out of the frame when the face is cut by its border
        truncated = bool(
            (pts < 0).any()
            or (pts[:, 0] >= w).any()
            or (pts[:, 1] >= h).any()
            or l < -margin
            or t < -margin
            or r > w + margin
            or b > h + margin
        )
        return FaceAnalysis(decoded=dec, face=face, points68=pts, truncated=truncated)

    def detect(self, image: str, box=None) -> dict:
        return self.analyze(image, box).describe()

    def landmarks(self, image: str, box=None) -> dict:
        fa = self.analyze(image, box)
        return {
            **fa.describe(),
            "points": np.round(fa.to_original(fa.points68), 2).tolist(),
            "geometry": dict(zip(FEATURE_NAMES, self.geometry(fa).astype(np.float64).round(5).tolist())),
        }

    @staticmethod
    def geometry(fa: FaceAnalysis) -> np.ndarray:
        return geometric_features(semantic_from_68(fa.points68))

    def crops_tensor(self, crops: list[np.ndarray], model: LoadedModel) -> torch.Tensor:
        inp = model.card.input
        return normalize_crops(np.stack(crops), inp.get("mean", CROP_MEAN), inp.get("std", CROP_STD)).to(self.device)

    def input_tensor(self, analyses: list[FaceAnalysis], model: LoadedModel | None = None) -> torch.Tensor:
        model = model or self.expression
        size = int(model.card.input.get("size", 64))
        return self.crops_tensor([fa.aligned(size).crop for fa in analyses], model)

    def classify_tensor(self, x: torch.Tensor, model: LoadedModel | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(probabilities, embeddings) for a batch of normalised crops."""
        with torch.inference_mode():
            net = (model or self.expression).module
            emb = net.embed(x)
            probs = torch.softmax(net.fc2(emb), dim=1)
        return probs.cpu().numpy(), emb.cpu().numpy()

    def embed_crops(self, crops: list[np.ndarray], model: LoadedModel | None = None) -> np.ndarray:
        """Next-to-last-layer features of aligned grayscale crops (N, D)."""
        return self.classify_tensor(self.crops_tensor(crops, model or self.expression), model)[1]

    def classify_analysis(self, fa: FaceAnalysis) -> dict:
        probs = calibration.probabilities(self, [fa])  # the network's head (fusion, calibration) when shipped
        classes = self.expression.card.classes
        p = probs[0]
        return {"label": classes[int(p.argmax())], "probabilities": {c: round(float(v), 5) for c, v in zip(classes, p)}}

    def classify(self, image: str, box=None) -> dict:
        fa = self.analyze(image, box)
        return {**fa.describe(), **self.classify_analysis(fa)}

    def embed(self, image: str, box=None) -> dict:
        fa = self.analyze(image, box)
        _, emb = self.classify_tensor(self.input_tensor([fa]))
        return {
            **fa.describe(),
            "embedding": emb[0].round(6).tolist(),
            "geometry": self.geometry(fa).astype(np.float64).round(5).tolist(),
        }

    @property
    def retriever(self):
        """Retrieval over pose libraries with this engine's networks (``backend.retrieval.Retriever``); it owns
        the library index cache."""
        if self._retriever is None:
            from .retrieval import Retriever

            self._retriever = Retriever(self)
        return self._retriever

    @property
    def gan(self) -> LoadedModel:
        """The landmark-guided expression GAN, loaded on first use."""
        if self._gan is None:
            self._gan = load_model(self.cfg.gan_model, "gan", self.device)
        return self._gan

    def align(self, image: str, out: str, size: int = 128, box=None) -> dict:
        outputs.file_path(out, outputs.IMAGE_EXTS)  # before the work
        fa = self.analyze(image, box)
        outputs.write_image(out, fa.aligned(size).crop)
        return {**fa.describe(), "aligned": out, "size": size}

    def draw(self, image: str, out: str, box=None) -> dict:
        """Write the image with the face box and the 68 landmarks drawn on it."""
        from .draw import draw_face

        outputs.file_path(out, outputs.IMAGE_EXTS)
        fa = self.analyze(image, box)
        draw_face(fa, out)
        return {**fa.describe(), "drawn": out}


__all__ = ["CLASSES", "Engine", "EngineConfig", "FaceAnalysis"]
