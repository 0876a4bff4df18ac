"""The one-way house (docs/architecture.md): import contracts in .importlinter, checked with import-linter."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from .conftest import ROOT

CONFIG = os.path.join(ROOT, ".importlinter")


def test_import_contracts_hold():
    pytest.importorskip("importlinter", reason="import-linter is not installed (pip install -e '.[test]')")
    r = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": ROOT},
    )
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
