"""The perception engine: decode -> detect -> 68 landmarks -> align -> geometric features / embed / classify.

Models are loaded once, when the engine is made; each public method takes an image path and returns plain,
JSON-ready data. Coordinates in results are in the original image's pixels (after EXIF orientation).
"""

from __future__ import annotations

import copy
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
    gray: np.ndarray | None = None  # the image in grayscale when the caller has it (video frames): not redone
    _aligned: dict[int, Aligned] = field(default_factory=dict)

    def aligned(self, size: int) -> Aligned:
        if size not in self._aligned:
            img = self.decoded.rgb if self.gray is None else self.gray
            self._aligned[size] = align_face68(img, self.points68, size=size)
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


def _input(model: LoadedModel, default_size: int) -> tuple[int, float, float]:
    inp = model.card.input
    return int(inp.get("size", default_size)), float(inp.get("mean", CROP_MEAN)), float(inp.get("std", CROP_STD))


def shares_trunk(a: LoadedModel, b: LoadedModel) -> bool:
    """Whether two expression networks have the same convolutional trunk (``features``), weight for weight: the
    shipped character network is the human one with its trunk frozen and new fully connected layers."""
    if a is b:
        return True
    fa, fb = getattr(a.module, "features", None), getattr(b.module, "features", None)
    if fa is None or fb is None:
        return False
    sa, sb = fa.state_dict(), fb.state_dict()
    return sa.keys() == sb.keys() and all(sa[k].shape == sb[k].shape and torch.equal(sa[k], sb[k]) for k in sa)


def folded_trunk(features: torch.nn.Module) -> torch.nn.Sequential:
    """An inference copy of a convolutional trunk: its layers in order, each batch norm folded into the
    convolution before it (the same function; the outputs differ by float rounding, ~1e-6)."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    def leaves(m: torch.nn.Module) -> list[torch.nn.Module]:
        return [x for c in m.children() for x in leaves(c)] if isinstance(m, torch.nn.Sequential) else [m]

    layers, out = leaves(features), []
    i = 0
    while i < len(layers):
        a, b = layers[i], layers[i + 1] if i + 1 < len(layers) else None
        if isinstance(a, torch.nn.Conv2d) and isinstance(b, torch.nn.BatchNorm2d):
            out.append(fuse_conv_bn_eval(a.eval(), b.eval()))
            i += 2
        else:
            out.append(copy.deepcopy(a).eval())
            i += 1
    return torch.nn.Sequential(*out).eval()


def _onednn(trunk: torch.nn.Module) -> torch.nn.Module | None:
    """The trunk on oneDNN tensors (``torch.utils.mkldnn``), or None where this torch lacks it. That module is
    built on TorchScript, whose deprecation notice its import raises: silenced here, the fallback covers its
    removal."""
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            from torch.utils import mkldnn

            return mkldnn.to_mkldnn(trunk)
    except Exception as exc:  # any failure: the channels-last trunk serves one crop too
        log.info("oneDNN trunk unavailable (%s); channels-last for single crops", exc)
        return None


class CropNetworks:
    """Both networks on a batch of aligned grayscale crops for the video and live path: the expression network's
    class probabilities (plain softmax) and the retrieval network's embedding.

    When the two share their trunk (``shares_trunk``) and their input, the convolutional stages run once for
    both heads. The trunk runs from an inference copy (``folded_trunk``) in the layout fastest on CPU for these
    48x48 crops (measured in docs/live.md): oneDNN tensors for one crop (the live mirror: 1.9 ms against 3.5 ms
    for the plain module), channels-last for batches (1.2 ms a crop against 1.8 ms). Other network pairs run one
    after the other, as ``Engine.classify_tensor`` runs them."""

    def __init__(self, expression: LoadedModel, retrieval: LoadedModel, device: torch.device):
        self.expression, self.retrieval, self.device = expression, retrieval, device
        self.expr_input, self.ret_input = _input(expression, 64), _input(retrieval, 48)
        self.sizes = sorted({self.expr_input[0], self.ret_input[0]})
        nets = (expression.module, retrieval.module)
        self.fast = all(hasattr(n, a) for n in nets for a in ("features", "pool", "fc1", "fc2"))
        self.shared = self.fast and self.expr_input == self.ret_input and shares_trunk(expression, retrieval)
        self._cl: dict[int, torch.nn.Module] = {}
        self._onednn: dict[int, torch.nn.Module | None] = {}
        if self.fast:
            with torch.no_grad():
                for net in nets[:1] if self.shared else nets:
                    trunk = folded_trunk(net.features).to(device)
                    self._cl[id(net)] = copy.deepcopy(trunk).to(memory_format=torch.channels_last)
                    if device.type == "cpu" and torch.backends.mkldnn.is_available():
                        self._onednn[id(net)] = _onednn(trunk)

    def _pooled(self, net: torch.nn.Module, crops: np.ndarray, inp: tuple[int, float, float]) -> torch.Tensor:
        x = normalize_crops(crops, inp[1], inp[2]).to(self.device)
        if len(x) == 1 and self._onednn.get(id(net)) is not None:
            y = self._onednn[id(net)](x.to_mkldnn()).to_dense()
        else:
            y = self._cl[id(net)](x.contiguous(memory_format=torch.channels_last))
        return net.pool(y)

    def __call__(self, crops: dict[int, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(probabilities (N, classes), embeddings (N, D)) for crops by side, ``{size: (N, S, S) uint8}``, one
        entry per size in ``sizes``."""
        expr, ret = self.expression.module, self.retrieval.module
        ce, cr = crops[self.expr_input[0]], crops[self.ret_input[0]]
        with torch.inference_mode():
            if not self.fast:
                x = normalize_crops(ce, *self.expr_input[1:]).to(self.device)
                probs = torch.softmax(expr(x), dim=1)
                emb = ret.embed(normalize_crops(cr, *self.ret_input[1:]).to(self.device))
            elif self.shared:
                pooled = self._pooled(expr, ce, self.expr_input)
                probs = torch.softmax(expr.fc2(expr.fc1(pooled)), dim=1)
                emb = ret.fc1(pooled)
            else:
                probs = torch.softmax(expr.fc2(expr.fc1(self._pooled(expr, ce, self.expr_input))), dim=1)
                emb = ret.fc1(self._pooled(ret, cr, self.ret_input))
        return probs.cpu().numpy(), emb.cpu().numpy()


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
        self._crop_networks: CropNetworks | None = None
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

    def crop_networks(self) -> CropNetworks:
        """The video and live path's networks (``CropNetworks``), made once."""
        if self._crop_networks is None:
            self._crop_networks = CropNetworks(self.expression, self.retrieval_model, self.device)
        return self._crop_networks

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


__all__ = ["CLASSES", "CropNetworks", "Engine", "EngineConfig", "FaceAnalysis"]
