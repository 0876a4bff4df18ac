"""Network definitions and weight loading (safetensors + a JSON model card beside it).

A released model is two files: ``<name>.safetensors`` (tensors only, no pickles) and ``<name>.json``, its
model card: ``{"architecture": ..., "config": {...}, "classes": [...], "input": {...}, "data": ...,
"metrics": {...}, "reproduce": "..."}``. The card's ``architecture`` names a class in ARCHITECTURES and
``config`` holds its constructor arguments, so the file alone says how to rebuild the network.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from deepexpr_blender.core import protocol
from deepexpr_blender.core.vocabulary import LABELS

from .errors import DeepExprError

log = logging.getLogger(__name__)

CLASSES: tuple[str, ...] = LABELS  # the networks' output order is the shared vocabulary's
# Expression networks see aligned grayscale crops scaled to [0, 1], then (x - CROP_MEAN) / CROP_STD.
CROP_MEAN = 0.5
CROP_STD = 0.5


def normalize_crops(crops: np.ndarray, mean: float = CROP_MEAN, std: float = CROP_STD) -> torch.Tensor:
    """The expression networks' input: uint8 crops (N, S, S) or one (S, S) -- or float crops already in
    [0, 1] -- as a float32 tensor (N, 1, S, S) or (1, S, S), normalised by ``mean`` and ``std``. The one
    place this is written, for serving, training and evaluation."""
    x = np.asarray(crops)
    x = x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32, copy=False)
    return torch.from_numpy((x - mean) / std)[..., None, :, :]


@dataclass
class ExpressionNetConfig:
    in_channels: int = 1  # grayscale aligned crops
    input_size: int = 64  # crop side in pixels (backend.align)
    widths: tuple[int, ...] = (32, 64, 128, 256)  # channels of the conv stages; each stage halves the size
    embed_dim: int = 256  # next-to-last layer: DeepExpr's retrieval feature
    num_classes: int = len(CLASSES)
    dropout: float = 0.4


def _stage(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
    )


class ExpressionNet(nn.Module):
    """VGG-style expression CNN. ``features`` (conv stages) -> ``fc1`` (the embedding, ReLU, so non-negative and
    normalisable to a distribution for the Jensen-Shannon distance) -> ``fc2`` (class logits).

    DeepExpr's transfer step freezes ``features``, re-initialises and trains ``fc1`` at a higher rate and
    fine-tunes ``fc2`` (training/).
    """

    def __init__(self, cfg: ExpressionNetConfig | None = None):
        super().__init__()
        self.cfg = cfg = cfg or ExpressionNetConfig()
        stages, cin = [], cfg.in_channels
        for w in cfg.widths:
            stages.append(_stage(cin, w))
            cin = w
        self.features = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Sequential(nn.Flatten(), nn.Dropout(cfg.dropout), nn.Linear(cin, cfg.embed_dim), nn.ReLU(True))
        self.fc2 = nn.Sequential(nn.Dropout(cfg.dropout), nn.Linear(cfg.embed_dim, cfg.num_classes))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc1(self.pool(self.features(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.embed(x))


def _gan():
    from .gan import ExpressionGAN, GanConfig

    return ExpressionGAN, GanConfig


ARCHITECTURES: dict[str, tuple[type[nn.Module], type]] = {
    "ExpressionNet": (ExpressionNet, ExpressionNetConfig),
    "ExpressionGAN": _gan(),
}


@dataclass
class ModelCard:
    architecture: str
    config: dict[str, Any]
    classes: list[str] = field(default_factory=lambda: list(CLASSES))
    input: dict[str, Any] = field(default_factory=dict)  # e.g. {"size": 64, "channels": 1, "mean": .5, "std": .5}
    data: str = ""  # what it was trained on, and the data's terms
    metrics: dict[str, Any] = field(default_factory=dict)
    reproduce: str = ""  # the command that reproduces the weights
    notes: str = ""


def file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def build(card: ModelCard) -> nn.Module:
    if card.architecture not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {card.architecture!r}; known: {', '.join(ARCHITECTURES)}")
    cls, cfg_cls = ARCHITECTURES[card.architecture]
    cfg = dict(card.config)
    for k, v in list(cfg.items()):
        if isinstance(v, list):
            cfg[k] = tuple(v)
    return cls(cfg_cls(**cfg))


def save_model(model: nn.Module, card: ModelCard, path_stem: str) -> str:
    """Write ``<stem>.safetensors`` and ``<stem>.json``; returns the safetensors path."""
    from safetensors.torch import save_file

    os.makedirs(os.path.dirname(os.path.abspath(path_stem)), exist_ok=True)
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(tensors, path_stem + ".safetensors", metadata={"architecture": card.architecture})
    with open(path_stem + ".json", "w", encoding="utf-8") as f:
        json.dump(asdict(card), f, indent=2)
    return path_stem + ".safetensors"


@dataclass
class LoadedModel:
    name: str
    module: nn.Module
    card: ModelCard
    path: str
    sha256: str


def load_model(weights_path: str, name: str, device: torch.device) -> LoadedModel:
    """Load a released model; MODEL_MISSING names the missing path, MODEL_INVALID says what is wrong."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    stem = weights_path[: -len(".safetensors")] if weights_path.endswith(".safetensors") else weights_path
    st_path, card_path = stem + ".safetensors", stem + ".json"
    for p in (st_path, card_path):
        if not os.path.isfile(p):
            raise DeepExprError(
                protocol.MODEL_MISSING,
                f"{name} model file not found: {p} (train it or point --{name}-model at one; see README)",
                {"model": name, "path": p},
            )
    try:
        with open(card_path, encoding="utf-8") as f:
            card = ModelCard(**json.load(f))
        module = build(card)
        state = load_file(st_path, device="cpu")
        module.load_state_dict(state, strict=True)
    except (OSError, ValueError, TypeError, KeyError, RuntimeError, SafetensorError, json.JSONDecodeError) as exc:
        raise DeepExprError(
            protocol.MODEL_INVALID,
            f"{name} model {st_path} does not load: {str(exc).splitlines()[0][:300]}",
            {"model": name, "path": st_path},
        ) from None
    module.to(device).eval()
    return LoadedModel(name=name, module=module, card=card, path=st_path, sha256=file_sha256(st_path))


def resolve_device(spec: str = "auto") -> torch.device:
    """``auto`` picks CUDA when available; ``cuda`` without a GPU is an error, not a silent fallback."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec.startswith("cuda") and not torch.cuda.is_available():
        raise DeepExprError(protocol.INVALID_PARAMS, "device 'cuda' requested but no CUDA GPU is available")
    if spec != "cpu" and not spec.startswith("cuda"):
        raise DeepExprError(protocol.INVALID_PARAMS, f"unknown device {spec!r}; use auto, cpu or cuda")
    return torch.device(spec)
