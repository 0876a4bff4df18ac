"""Build library from rig: seconds to build a 30-pose library from a rig, the add-on's own path (find the
poses, then ``library_from_rig.build``: rest state, face region, landmarks, 30 face-on thumbnails, library.json).

    python -m bench.rig_library [--repeats 3] [--out docs/benchmarks.md]

Rigs: the toon ``pip`` (8.3k vertices, AU keys) and, when ``../shared/data/rigs`` is present, the VALID
avatar (22k-vertex head, 7 skinned meshes under a 114-bone armature: the heaviest of the shared rigs). 30
poses: neutral plus the expressions at five intensities (0.2 ... 1.0), the first 30. Target: under 10 s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time

import numpy as np

from bench.report import emit, machine

INTENSITIES = (0.2, 0.4, 0.6, 0.8, 1.0)
SHARED_DATA = os.environ.get(
    "DEEPEXPR_SHARED_DATA", os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")
)


def _toon():
    import bpy

    from deepexpr_blender.toon import CHARACTERS, build_character

    bpy.ops.wm.read_factory_settings(use_empty=True)
    return build_character(CHARACTERS[0])


def _valid():
    import bpy

    from deepexpr_blender.rigs import importing

    path = os.path.join(SHARED_DATA, "rigs", "valid_asian_f_1_casual", "Asian_F_1_Casual.glb")
    if not os.path.isfile(path):
        return None
    bpy.ops.wm.read_factory_settings(use_empty=True)
    return importing.pick_face_object(importing.import_character(path))


def run(make, repeats: int) -> dict | None:
    from deepexpr_blender import poses
    from deepexpr_blender.library_from_rig.build import build_library

    times, find_times, n = [], [], 0
    for _ in range(repeats):
        obj = make()
        if obj is None:
            return None
        out = os.path.join(tempfile.mkdtemp(), "lib")
        t = time.perf_counter()
        found = poses.find_poses(obj, intensities=INTENSITIES)[:30]
        t_find = time.perf_counter() - t
        build_library(out, found, rig=obj, name="bench")
        times.append(time.perf_counter() - t)
        find_times.append(t_find)
        n = len(found)
        shutil.rmtree(os.path.dirname(out), ignore_errors=True)
    return {
        "poses": n,
        "median": float(np.median(times)),
        "max": float(np.max(times)),
        "find": float(np.median(find_times)),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    rows = [("toon pip (8.3k vertices)", run(_toon, args.repeats)),
            ("VALID avatar (22k-vertex head, armature)", run(_valid, args.repeats))]  # fmt: skip
    lines = [
        f"### Build library from rig, {time.strftime('%Y-%m-%d')}",
        "",
        f"Machine: {machine()}. Workbench, 256 px thumbnails; {args.repeats} builds each, a fresh scene each time.",
        "",
        "| rig | poses | median s | max s | of which finding the poses, s | per pose, s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, r in rows:
        if r is None:
            lines.append(f"| {name} | – | not measured (../shared/data/rigs absent) | | | |")
            continue
        per = r["median"] / r["poses"]
        lines.append(f"| {name} | {r['poses']} | {r['median']:.2f} | {r['max']:.2f} | {r['find']:.2f} | {per:.3f} |")
    lines += ["", "Target: a 30-pose library in under 10 s."]
    emit(lines, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
