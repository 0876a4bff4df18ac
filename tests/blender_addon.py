"""Shared pieces of the extension tests: the installed add-on in real headless Blender (any supported bpy:
5.0.1 in the project environment, 4.2/4.5 through tools/blender_venv.py), the backend child in the project
environment, and small real inputs. Test modules import the fixtures they use from here."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from importlib import import_module

import cv2
import numpy as np
import pytest

from .conftest import ROOT

bpy = pytest.importorskip("bpy", reason="bpy (Blender as a Python module) is not installed")

MODULE = "bl_ext.user_default.deepexpr_blender"
# The backend child runs in the project environment; the tests may run in another Blender (tools/blender_venv.py).
BACKEND_PYTHON = os.environ.get("DEEPEXPR_BACKEND_PYTHON") or sys.executable


def mod(name: str):
    """A module of the installed add-on, e.g. mod("batch.workflow")."""
    return import_module(f"{MODULE}.{name}")


def drain_until(cond, timeout: float = 120.0) -> bool:
    """Drain the backend's answers (timers do not fire in bpy module mode) until ``cond()`` or the timeout."""
    connection = mod("session.connection")
    deadline = time.time() + timeout
    while time.time() < deadline:
        connection.drain()
        if cond():
            return True
        time.sleep(0.05)
    return False


def astronaut() -> str:
    import skimage.data

    path = os.path.join(os.environ.get("TMPDIR", "/tmp"), "deepexpr_ext_astronaut.png")
    if not os.path.isfile(path):
        cv2.imwrite(path, cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR))
    return path


def video(path: str, frames: list[np.ndarray], fps: int = 24) -> str:
    wr = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), fps, (frames[0].shape[1], frames[0].shape[0]))
    for f in frames:
        wr.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    wr.release()
    return path


def fcurves(id_data) -> dict:
    """{data_path: F-curve} of the action animating ``id_data`` (any Blender version)."""
    return {fc.data_path: fc for fc in mod("compat").action_fcurves(id_data)}


def key_frames(id_data) -> list[float]:
    return sorted({k.co.x for fc in fcurves(id_data).values() for k in fc.keyframe_points})


def strips(sed):
    return mod("compat").strips(sed)


def reset_scene() -> None:
    """A factory-empty file with the add-on enabled and pointed at the backend."""
    import addon_utils

    bpy.ops.wm.read_factory_settings(use_empty=True)
    addon_utils.enable(MODULE, default_set=True)
    set_backend_python()


def set_backend_python() -> None:
    prefs = bpy.context.preferences.addons[MODULE].preferences
    prefs.python = BACKEND_PYTHON
    prefs.device = "cpu"


@pytest.fixture(scope="module")
def zip_path(tmp_path_factory):
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    try:
        from build_extension import build  # runs blender_ext.py build + validate (raises if invalid)
    finally:
        sys.path.pop(0)
    return build(str(tmp_path_factory.mktemp("dist")))


@pytest.fixture(scope="module")
def addon(zip_path, random_model):
    import addon_utils

    os.environ["DEEPEXPR_EXPRESSION_MODEL"] = random_model  # the backend child inherits it
    bpy.ops.wm.read_factory_settings(use_empty=True)
    res = bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default", enable_on_install=True)
    assert res == {"FINISHED"}
    assert MODULE in {m.__name__ for m in addon_utils.modules()} or addon_utils.check(MODULE)[1]
    set_backend_python()
    yield import_module(MODULE)
    mod("session.connection").stop()
    addon_utils.disable(MODULE)


@pytest.fixture(scope="session")
def small_library(tmp_path_factory):
    """A library of pip, rendered in a separate process in the project environment (rendering resets this
    process's Blender)."""
    out = str(tmp_path_factory.mktemp("lib") / "lib")
    cmd = [BACKEND_PYTHON, "-m", "training.build_library", "--out", out]
    cmd += ["--per-expression", "1", "--characters", "pip", "--size", "96"]
    subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, timeout=300)
    return out
