"""Build library from rig: seconds to build a 30-pose library from a rig, the add-on's own path (find the
poses, then ``library_from_rig.build``: rest state, face region, landmarks, 30 face-on thumbnails, library.json).

    python -m bench.rig_library [--repeats 3] [--out docs/benchmarks.md]

Rigs: the toon ``pip`` (8.3k vertices, AU keys) and, when ``../shared/data/rigs`` is present, the five
shared rigs (evaluation only: timed here, never tuned on), the VALID avatar (22k-vertex head, 7 skinned meshes
under a 114-bone armature, 2048² textures) being the heaviest. 30 poses: neutral plus the expressions at five
intensities (0.2 ... 1.0), the first 30 (the Weboji heads have 21). Each row: wall seconds, the process's CPU
seconds (Blender's threads and the software GL's included: what the build costs, whatever the other
processes on the machine are doing) and the load average when it ran. Target: under 10 s.
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


SHARED_RIGS = (  # (row name, folder, file)
    ("VALID avatar (22k-vertex head, armature, textures)", "valid_asian_f_1_casual", "Asian_F_1_Casual.glb"),
    ("Rocketbox female (full body, 80 bones)", "rocketbox_female_adult_01", "Female_Adult_01_facial.fbx"),
    ("Rocketbox male (full body, 80 bones)", "rocketbox_male_adult_08", "Male_Adult_08_facial.fbx"),
    ("Weboji boy (13k-vertex head)", "weboji_boy", "weboji_boy.blend"),
    ("Weboji raccoon", "weboji_raccoon", "weboji_raccoon.blend"),
)


def _shared(folder: str, file: str):
    def make():
        import bpy

        from deepexpr_blender.rigs import importing

        path = os.path.join(SHARED_DATA, "rigs", folder, file)
        if not os.path.isfile(path):
            return None
        bpy.ops.wm.read_factory_settings(use_empty=True)
        return importing.pick_face_object(importing.import_character(path))

    return make


def run(make, repeats: int) -> dict | None:
    from deepexpr_blender import poses
    from deepexpr_blender.library_from_rig.build import build_library

    times, cpu, find_times, loads, n = [], [], [], [], 0
    for _ in range(repeats):
        obj = make()
        if obj is None:
            return None
        out = os.path.join(tempfile.mkdtemp(), "lib")
        t, c = time.perf_counter(), time.process_time()
        found = poses.find_poses(obj, intensities=INTENSITIES)[:30]
        t_find = time.perf_counter() - t
        build_library(out, found, rig=obj, name="bench")
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
        find_times.append(t_find)
        loads.append(os.getloadavg()[0])
        n = len(found)
        shutil.rmtree(os.path.dirname(out), ignore_errors=True)
    return {
        "poses": n,
        "median": float(np.median(times)),
        "max": float(np.max(times)),
        "cpu": float(np.median(cpu)),
        "find": float(np.median(find_times)),
        "load": (float(np.min(loads)), float(np.max(loads))),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    rows = [("toon pip (8.3k vertices)", run(_toon, args.repeats))]
    rows += [(name, run(_shared(folder, file), args.repeats)) for name, folder, file in SHARED_RIGS]
    from deepexpr_blender.rigs.framing import ThumbnailConfig

    lines = [
        f"### Build library from rig, {time.strftime('%Y-%m-%d')}",
        "",
        f"Machine: {machine()}. Workbench, 256 px thumbnails, {ThumbnailConfig().aa_samples} AA samples; "
        f"{args.repeats} builds each, a fresh scene each time.",
        "",
        "| rig | poses | median s | max s | CPU s (median) | of which finding the poses, s | per pose, s | load |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, r in rows:
        if r is None:
            lines.append(f"| {name} | – | not measured (../shared/data/rigs absent) | | | | | |")
            continue
        per = r["median"] / r["poses"]
        lines.append(
            f"| {name} | {r['poses']} | {r['median']:.2f} | {r['max']:.2f} | {r['cpu']:.2f} | {r['find']:.2f} | "
            f"{per:.3f} | {r['load'][0]:.1f}–{r['load'][1]:.1f} |"
        )
    lines += ["", "Target: a 30-pose library in under 10 s."]
    emit(lines, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
