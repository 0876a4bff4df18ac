"""Shared fixtures: a real face photo, one engine per session, a randomly initialised expression model."""

from __future__ import annotations

import os

import cv2
import numpy as np
import pytest

# Headless Blender (bpy) must write its user files into a temp dir, not the home folder: set before bpy loads.
_BLENDER_HOME = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"deepexpr-tests-blender-{os.getpid()}")
os.environ.setdefault("BLENDER_USER_RESOURCES", os.path.join(_BLENDER_HOME, "resources"))
os.environ.setdefault("XDG_CACHE_HOME", os.path.join(_BLENDER_HOME, "cache"))

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DATA = os.path.normpath(os.environ.get("DEEPEXPR_SHARED_DATA", os.path.join(ROOT, "..", "shared", "data")))


def shared_path(*parts: str) -> str:
    path = os.path.join(SHARED_DATA, *parts)
    if not os.path.exists(path):
        pytest.skip(f"{path} is absent (../shared/data is not beside this checkout)")
    return path


@pytest.fixture(scope="session")
def astronaut_rgb() -> np.ndarray:
    import skimage.data

    return skimage.data.astronaut()


@pytest.fixture(scope="session")
def astronaut_path(tmp_path_factory, astronaut_rgb) -> str:
    path = str(tmp_path_factory.mktemp("img") / "astronaut.png")
    cv2.imwrite(path, cv2.cvtColor(astronaut_rgb, cv2.COLOR_RGB2BGR))
    return path


@pytest.fixture(scope="session")
def random_model(tmp_path_factory) -> str:
    """A randomly initialised ExpressionNet written as a released model (weights + card)."""
    import torch

    from backend.models import ExpressionNet, ExpressionNetConfig, ModelCard, save_model

    torch.manual_seed(0)
    cfg = ExpressionNetConfig(input_size=48)
    net = ExpressionNet(cfg).eval()
    card = ModelCard(
        architecture="ExpressionNet",
        config={**cfg.__dict__, "widths": list(cfg.widths)},
        input={"size": 48, "channels": 1, "mean": 0.5, "std": 0.5},
        data="random init (tests)",
    )
    return save_model(net, card, str(tmp_path_factory.mktemp("model") / "random"))


@pytest.fixture(scope="session")
def engine(random_model):
    from backend.engine import Engine, EngineConfig

    return Engine(EngineConfig(device="cpu", expression_model=random_model))
