"""The human network's post-hoc head: calibrated class probabilities from the CNN and the face's geometry.

Every probability the backend reports for a human face (``classify``, and the class distribution retrieval
compares) comes from ``probabilities`` here, in one place:

    z = a * log p_cnn + sum_k c_k * log p_k + b * log p_geo + bias - tau * log prior        p = softmax(z)

- ``p_cnn``: the expression network's softmax averaged over the crop and its mirror (flip test-time
  augmentation);
- ``p_k``: the same for each **expert**: another expression network on the same crop, trained separately
  (other seed, class-balanced loss), that ships beside the head (``<stem>_expert<k>.safetensors`` + ``.json``)
  and only votes on the class. The retrieval features stay the main network's, so a library's index and the
  character network (which shares the main network's trunk) do not change when an expert is added;
- ``p_geo``: a small MLP (``GeometryNet``) on the 68 aligned landmarks (coordinates in the crop frame, as
  fractions of its side) and the 9 geometric features (``backend.geometry``), averaged with the mirrored face;
- ``a``, ``c_k``, ``b``, ``bias``: fitted on validation data by negative log-likelihood (late fusion +
  calibration in one: each weight plays the role of the inverse temperature of its source);
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
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from .landmarks import MIRROR68
from .models import LoadedModel, load_model

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
class Expert:
    """A second expression network whose vote the head fuses (see the module docstring): its weights' stem
    (beside the head), its fusion weight ``c_k``, and the loaded network."""

    stem: str
    weight: float
    loaded: LoadedModel

    def module_on(self, device: torch.device) -> nn.Module:
        if next(self.loaded.module.parameters()).device != device:
            self.loaded.module.to(device)
        return self.loaded.module


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
    experts: list[Expert] = field(default_factory=list)

    def fuse(self, p_cnn: np.ndarray, p_geo: np.ndarray | None, p_experts: Sequence[np.ndarray] = ()) -> np.ndarray:
        """Calibrated probabilities (N, C) from the CNN's, the experts' (in ``experts`` order) and the geometry
        MLP's probabilities."""
        if len(p_experts) != len(self.experts):
            raise ValueError(f"{len(p_experts)} expert probabilities for {len(self.experts)} experts")
        z = self.a * np.log(np.clip(p_cnn, 1e-8, 1.0)) + self.bias - self.tau * self.log_prior
        for expert, p in zip(self.experts, p_experts):
            z = z + expert.weight * np.log(np.clip(p, 1e-8, 1.0))
        if p_geo is not None and self.b:
            z = z + self.b * np.log(np.clip(p_geo, 1e-8, 1.0))
        return softmax(z)

    def expert_probabilities(self, x: torch.Tensor) -> list[np.ndarray]:
        """Each expert's softmax (flip TTA as the head's) on the normalised crops ``x`` (N, 1, S, S)."""
        return [cnn_probabilities(e.module_on(x.device), x, self.flip_tta) for e in self.experts]

    def from_crops(self, net: nn.Module, x: torch.Tensor, lm: np.ndarray | None, geo: np.ndarray | None) -> np.ndarray:
        """The served probabilities (N, C) of crops ``x`` of the main network ``net``: every source of the
        fusion computed here, in one place (the server, the evaluations and the tests call this)."""
        p_cnn = cnn_probabilities(net, x, self.flip_tta)
        p_geo = None if self.geometry is None or lm is None else self.geometry_probabilities(lm, geo)
        return self.fuse(p_cnn, p_geo, self.expert_probabilities(x))

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
    if head.experts:
        # stems relative to the head's folder: the head and its experts move together
        config["experts"] = [
            {"stem": os.path.basename(e.stem), "weight": round(float(e.weight), 6)} for e in head.experts
        ]
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
    """The head at ``stem`` (.json, .safetensors), or None when there is no head file. Its experts load from
    beside it (``load_model``: MODEL_MISSING / MODEL_INVALID name a missing or damaged expert)."""
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
    experts = []
    for e in cfg.get("experts", []):
        path = os.path.join(os.path.dirname(stem), os.path.basename(str(e["stem"])))
        experts.append(Expert(path, float(e["weight"]), load_model(path, "expression expert", torch.device("cpu"))))
    return Head(
        a=float(cfg["a"]),
        b=float(cfg["b"]),
        bias=np.asarray(cfg["bias"], np.float64),
        log_prior=np.asarray(cfg["log_prior"], np.float64),
        tau=float(cfg["tau"]),
        geometry=geometry,
        flip_tta=bool(cfg.get("flip_tta", True)),
        experts=experts,
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
    lm = geo = None
    if head.geometry is not None:
        size = x.shape[-1]
        lm = np.stack([aligned_landmarks(fa.points68, fa.aligned(size).matrix, size) for fa in analyses])
        geo = np.stack([engine.geometry(fa) for fa in analyses])
    return head.from_crops(model.module, x, lm, geo)
