"""The human network's post-hoc head: calibrated class probabilities from the CNN and the face's geometry.

Every probability the backend reports for a human face (``classify``, and the class distribution retrieval
compares) comes from ``probabilities`` here, in one place:

    z = a * log p_cnn + b * log p_geo + bias - tau * log prior        p = softmax(z)

- ``p_cnn``: the expression network's softmax averaged over the crop and its mirror (flip test-time
  augmentation);
- ``p_geo``: a small MLP (``GeometryNet``) on the 68 aligned landmarks (coordinates in the crop frame, as
  fractions of its side) and the 9 geometric features (``backend.geometry``), averaged with the mirrored face;
- ``a``, ``b``, ``bias``: fitted on validation data by negative log-likelihood (late fusion + calibration in
  one: ``a`` and ``b`` play the role of the inverse temperature of each source);
- ``tau * log prior``: logit adjustment (Menon et al. 2021). With ``tau = 1`` the probabilities are those of a
  class-balanced world: every expression equally likely before the face is seen, which is what a rig's
  expressions are; ``tau = 0`` gives probabilities calibrated for the training data's class frequencies.

The head ships beside the network as ``<stem>_head.json`` (a model card whose ``config`` holds the fusion
parameters) and ``<stem>_head.safetensors`` (the geometry MLP). Without a head file the network's plain
softmax is used, as before. ``training/fit_head.py`` fits and writes it.
"""

from __future__ import annotations

import functools
import json
import logging
import os
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .landmarks import MIRROR68

log = logging.getLogger(__name__)

HEAD_SUFFIX = "_head"
GEO_DIM = 68 * 2 + 9  # aligned landmark coordinates + backend.geometry features


def aligned_landmarks(points68: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """The 68 landmarks mapped by the alignment ``matrix`` into the crop, as fractions of its side (68, 2)."""
    return ((np.asarray(points68, np.float64) @ matrix[:, :2].T + matrix[:, 2]) / size).astype(np.float32)


def mirror_landmarks(lm: np.ndarray) -> np.ndarray:
    """Aligned landmarks (..., 68, 2) of the horizontally mirrored crop."""
    out = np.asarray(lm)[..., list(MIRROR68), :].copy()
    out[..., 0] = 1.0 - out[..., 0]
    return out


def geometry_input(lm: np.ndarray, geo: np.ndarray) -> np.ndarray:
    """(N, GEO_DIM) float32: flattened aligned landmarks, then the geometric features."""
    lm = np.asarray(lm, np.float32).reshape(len(lm), -1)
    return np.concatenate([lm, np.asarray(geo, np.float32).reshape(len(lm), -1)], axis=1)


class GeometryNet(nn.Module):
    """MLP on ``geometry_input`` (standardised by stored statistics) -> class logits."""

    def __init__(self, in_dim: int = GEO_DIM, hidden: int = 256, num_classes: int = 7, dropout: float = 0.3):
        super().__init__()
        self.register_buffer("mean", torch.zeros(in_dim))
        self.register_buffer("std", torch.ones(in_dim))
        self.net = nn.Sequential(
            nn.Linear(in_dim, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.mean) / self.std)


@dataclass
class Head:
    """Fusion parameters (see the module docstring) and the geometry MLP (None: CNN only)."""

    a: float
    b: float
    bias: np.ndarray  # (C,)
    log_prior: np.ndarray  # (C,) log class frequencies of the training data
    tau: float
    geometry: GeometryNet | None
    flip_tta: bool = True

    def fuse(self, p_cnn: np.ndarray, p_geo: np.ndarray | None) -> np.ndarray:
        """Calibrated probabilities (N, C) from the CNN's and the geometry MLP's probabilities."""
        z = self.a * np.log(np.clip(p_cnn, 1e-8, 1.0)) + self.bias - self.tau * self.log_prior
        if p_geo is not None and self.b:
            z = z + self.b * np.log(np.clip(p_geo, 1e-8, 1.0))
        return softmax(z)

    @torch.inference_mode()
    def geometry_probabilities(self, lm: np.ndarray, geo: np.ndarray) -> np.ndarray | None:
        """The geometry MLP's probabilities (N, C), averaged with the mirrored face; None without one."""
        if self.geometry is None:
            return None
        self.geometry.eval()
        p = [
            torch.softmax(self.geometry(torch.from_numpy(geometry_input(v, geo))), 1).numpy()
            for v in (lm, mirror_landmarks(lm))
        ]
        return (p[0] + p[1]) / 2

    def probabilities(self, p_cnn: np.ndarray, lm: np.ndarray, geo: np.ndarray) -> np.ndarray:
        return self.fuse(p_cnn, self.geometry_probabilities(lm, geo))


def softmax(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, np.float64)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def head_stem(model_path: str) -> str:
    """``backend/weights/expression_human.safetensors`` -> ``backend/weights/expression_human_head``."""
    stem = model_path[: -len(".safetensors")] if model_path.endswith(".safetensors") else model_path
    return stem + HEAD_SUFFIX


def save_head(head: Head, card: dict, stem: str) -> None:
    """Write ``<stem>.json`` (``card`` with the fusion parameters as its ``config``) and, with a geometry MLP,
    ``<stem>.safetensors``."""
    from safetensors.torch import save_file

    config = {
        "a": round(float(head.a), 6),
        "b": round(float(head.b), 6),
        "bias": [round(float(v), 6) for v in head.bias],
        "log_prior": [round(float(v), 6) for v in head.log_prior],
        "tau": round(float(head.tau), 4),
        "flip_tta": head.flip_tta,
    }
    if head.geometry is not None:
        g = head.geometry
        config["geometry"] = {
            "in_dim": g.net[0].in_features,
            "hidden": g.net[0].out_features,
            "num_classes": g.net[-1].out_features,
        }
        tensors = {k: v.detach().contiguous().cpu() for k, v in g.state_dict().items()}
        save_file(tensors, stem + ".safetensors", metadata={"architecture": "GeometryNet"})
    with open(stem + ".json", "w", encoding="utf-8") as f:
        json.dump({**card, "config": config}, f, indent=2)


def load_head(stem: str) -> Head | None:
    """The head at ``stem`` (.json, .safetensors), or None when there is no head file."""
    card_path = stem + ".json"
    if not os.path.isfile(card_path):
        return None
    from safetensors.torch import load_file

    with open(card_path, encoding="utf-8") as f:
        cfg = json.load(f)["config"]
    geometry = None
    if cfg.get("geometry"):
        g = cfg["geometry"]
        geometry = GeometryNet(g["in_dim"], g["hidden"], g["num_classes"])
        geometry.load_state_dict(load_file(stem + ".safetensors"), strict=True)
        geometry.eval()
    return Head(
        a=float(cfg["a"]),
        b=float(cfg["b"]),
        bias=np.asarray(cfg["bias"], np.float64),
        log_prior=np.asarray(cfg["log_prior"], np.float64),
        tau=float(cfg["tau"]),
        geometry=geometry,
        flip_tta=bool(cfg.get("flip_tta", True)),
    )


@functools.lru_cache(maxsize=4)
def _head_for(model_path: str, mtime: float) -> Head | None:
    head = load_head(head_stem(model_path))
    log.info("expression head for %s: %s", model_path, "calibrated fusion" if head else "none (plain softmax)")
    return head


def head_for(model_path: str) -> Head | None:
    """The head shipped beside the expression network at ``model_path`` (cached; reloaded if it changes)."""
    card = head_stem(model_path) + ".json"
    return _head_for(model_path, os.path.getmtime(card) if os.path.exists(card) else 0.0)


@torch.inference_mode()
def cnn_probabilities(net: nn.Module, x: torch.Tensor, flip_tta: bool) -> np.ndarray:
    """Softmax of the network for normalised crops (N, 1, S, S), averaged with the mirrored crops."""
    net.eval()
    if not flip_tta:
        return torch.softmax(net(x), 1).cpu().numpy().astype(np.float64)
    p = torch.softmax(net(torch.cat([x, torch.flip(x, dims=[3])])), 1)  # one batch: crops, then mirrors
    return ((p[: len(x)] + p[len(x) :]) / 2).cpu().numpy().astype(np.float64)


def probabilities(engine, analyses: list) -> np.ndarray:
    """Class probabilities (N, C) of faces (``FaceAnalysis``) from the engine's expression network and its
    head; the network's plain softmax when it has no head."""
    model = engine.expression
    x = engine.input_tensor(analyses, model)
    head = head_for(model.path)
    if head is None:
        return cnn_probabilities(model.module, x, flip_tta=False)
    p_cnn = cnn_probabilities(model.module, x, head.flip_tta)
    if head.geometry is None:
        return head.fuse(p_cnn, None)
    size = x.shape[-1]
    lm = np.stack([aligned_landmarks(fa.points68, fa.aligned(size).matrix, size) for fa in analyses])
    geo = np.stack([engine.geometry(fa) for fa in analyses])
    return head.probabilities(p_cnn, lm, geo)
