"""Build (and validate) the Blender extension zip with Blender's own tooling.

    python tools/build_extension.py [--out dist]

Stages ``deepexpr_blender/`` and the top-level ``blender_manifest.toml`` into ``build/extension/`` (the zip
needs the manifest beside ``__init__.py``), then runs ``blender_ext.py build`` and ``validate`` from the
installed ``bpy`` (Blender as a module). Prints the zip's path.
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def blender_ext_script() -> str:
    import importlib.util

    spec = importlib.util.find_spec("bpy")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("bpy is not installed: run the README's setup first")
    found = glob.glob(
        os.path.join(
            list(spec.submodule_search_locations)[0], "*", "scripts", "addons_core", "bl_pkg", "cli", "blender_ext.py"
        )
    )
    if not found:
        raise SystemExit("blender_ext.py not found inside bpy")
    return found[0]


def stage(dest: str) -> str:
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(os.path.join(ROOT, "deepexpr_blender"), dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy(os.path.join(ROOT, "blender_manifest.toml"), dest)
    return dest


def build(out: str) -> str:
    src = stage(os.path.join(ROOT, "build", "extension", "deepexpr_blender"))
    os.makedirs(out, exist_ok=True)
    script = blender_ext_script()
    subprocess.run([sys.executable, script, "build", "--source-dir", src, "--output-dir", out], check=True)
    zips = sorted(glob.glob(os.path.join(out, "deepexpr_blender-*.zip")), key=os.path.getmtime)
    subprocess.run([sys.executable, script, "validate", zips[-1]], check=True)
    return zips[-1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(ROOT, "dist"))
    args = ap.parse_args()
    print(build(args.out))


if __name__ == "__main__":
    main()
