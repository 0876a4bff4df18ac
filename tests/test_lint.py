"""The code stays ruff clean (lint rules and formatting in pyproject.toml)."""

import shutil
import subprocess

import pytest

from .conftest import ROOT

PATHS = ["backend", "deepexpr_blender", "training", "tests", "bench", "tools"]


@pytest.mark.skipif(
    shutil.which("ruff") is None and not __import__("importlib").util.find_spec("ruff"), reason="ruff is not installed"
)
def test_ruff_clean():
    import sys

    r = subprocess.run([sys.executable, "-m", "ruff", "check", *PATHS], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-3000:]
    r = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--check", *PATHS], cwd=ROOT, capture_output=True, text=True
    )
    assert r.returncode == 0, r.stdout[-3000:]
