"""Make a virtual environment that runs the test suite against another Blender version (bpy from PyPI).

    python tools/blender_venv.py .venv-bpy42 --bpy 4.2.23 --project-venv .venv
    python tools/blender_venv.py .venv-bpy42 --bpy-site /path/to/site-packages --project-venv .venv

The new environment has its own ``bpy`` (and the numpy that Blender version ships with), then, behind it,
the project environment's packages (torch, dlib, OpenCV, pytest...) through a ``.pth`` file, so the extension
tests run in that Blender while the backend child keeps running in the project environment
(``DEEPEXPR_BACKEND_PYTHON``). ``--bpy-site`` reuses a site-packages that already holds that bpy instead of
installing it (no download). Idempotent: running it again only rewrites the links.
"""

from __future__ import annotations

import argparse
import glob
import os
import subprocess
import sys
import venv


def site_packages(env: str) -> str:
    found = glob.glob(os.path.join(env, "lib", "python3*", "site-packages"))
    if not found:
        raise SystemExit(f"no site-packages under {env}")
    return found[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("env", help="the environment to make, e.g. .venv-bpy42")
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--bpy", help="the bpy version to install from PyPI, e.g. 4.2.23")
    src.add_argument("--bpy-site", help="an existing site-packages holding the wanted bpy (no install)")
    ap.add_argument("--project-venv", default=".venv", help="the project environment whose packages stay visible")
    args = ap.parse_args()
    python = os.path.join(args.env, "bin", "python")
    if not os.path.exists(python):
        venv.EnvBuilder(with_pip=bool(args.bpy), symlinks=True).create(args.env)
    own = site_packages(args.env)
    lines = []
    if args.bpy:
        subprocess.run(
            [python, "-m", "pip", "install", "--quiet", f"bpy=={args.bpy}", "numpy<2"], check=True, stdout=sys.stderr
        )
    else:
        lines.append(f"import site; site.addsitedir({os.path.abspath(args.bpy_site)!r})")
    lines.append(f"import site; site.addsitedir({os.path.abspath(site_packages(args.project_venv))!r})")
    with open(os.path.join(own, "zz-deepexpr-project.pth"), "w") as f:
        f.write("\n".join(lines) + "\n")
    out = subprocess.run(
        [python, "-c", "import bpy, torch; print(bpy.app.version_string)"], check=True, capture_output=True, text=True
    )
    print(f"{args.env}: bpy {out.stdout.strip()} with {args.project_venv}'s packages behind it")


if __name__ == "__main__":
    main()
