"""Evidence for the extension: a face video in, a toon character keyed over the timeline out.

    python tools/batch_evidence.py [--out docs/batch_keying.png]

1. Makes a short "performance" from the sample face with the backend's warp transitions (key frames:
   the face as it is, surprise, sadness, anger), written as a video file.
2. In headless Blender, installs the built extension zip, adds the toon character "pip", and runs the
   add-on's batch retrieval over the video (smoothing on), exactly as the menu operator does.
3. Renders the character at several keyed frames and writes them under the matching video frames.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import cv2
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def performance(tmp: str) -> tuple[str, list[np.ndarray]]:
    from backend.demo import sample_face
    from backend.engine import Engine, EngineConfig

    face = sample_face(tmp)
    keys = os.path.join(tmp, "keys.json")
    json.dump(
        {
            "keyframes": [
                {"frame": 24, "expression": "surprise"},
                {"frame": 48, "expression": "sadness"},
                {"frame": 72, "expression": "anger"},
            ]
        },
        open(keys, "w"),
    )
    res = Engine(EngineConfig(device="cpu")).generate_sequence(
        face, os.path.join(tmp, "perf"), frames=73, easing="ease_in_out", keyframes=keys
    )
    frames = [cv2.imread(f) for f in res["frames"]]
    video = os.path.join(tmp, "performance.avi")
    wr = cv2.VideoWriter(video, cv2.VideoWriter_fourcc(*"MJPG"), 24, (frames[0].shape[1], frames[0].shape[0]))
    for f in frames:
        wr.write(f)
    wr.release()
    return video, frames


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "batch_keying.png"))
    ap.add_argument("--show", type=int, nargs="*", default=[1, 13, 25, 37, 49, 61, 73])
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="deepexpr-evidence-")
    os.environ.setdefault("BLENDER_USER_RESOURCES", os.path.join(tmp, "blender"))
    os.environ.setdefault("XDG_CACHE_HOME", os.path.join(tmp, "xdg"))
    video, frames = performance(tmp)
    from build_extension import build

    zip_path = build(os.path.join(tmp, "dist"))
    import bpy

    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default", enable_on_install=True)
    module = "bl_ext.user_default.deepexpr_blender"
    bpy.context.preferences.addons[module].preferences.python = sys.executable
    from importlib import import_module

    wf, runtime = import_module(module + ".ops.workflows"), import_module(module + ".ops.runtime")
    scene = bpy.context.scene
    bpy.ops.deepexpr.add_character(character="pip")
    props = scene.deepexpr
    props.batch_input, props.batch_step, props.batch_min_hold = video, 2, 6
    scene.frame_set(1)
    run = wf.start_batch(scene)
    t0 = time.time()
    while not run.done and time.time() - t0 < 900:
        runtime.drain()
        time.sleep(0.05)
    print(props.batch_report)
    # Render the keyed character at the chosen frames.
    cam = bpy.data.objects.new("cam", bpy.data.cameras.new("cam"))
    scene.collection.objects.link(cam)
    cam.location, cam.rotation_euler = (0, -5.8, 0), (np.pi / 2, 0, 0)
    cam.data.lens = 70
    scene.camera = cam
    scene.render.engine = "BLENDER_WORKBENCH"
    scene.render.resolution_x = scene.render.resolution_y = 256
    scene.display.shading.light, scene.display.shading.color_type = "STUDIO", "MATERIAL"
    scene.display.shading.show_object_outline = True
    world = bpy.data.worlds.new("w")
    world.color = (0.93, 0.93, 0.95)
    scene.world = world
    scene.view_settings.view_transform = "Standard"
    tiles_top, tiles_bottom = [], []
    for f in args.show:
        scene.frame_set(f)
        path = os.path.join(tmp, f"char_{f:03d}.png")
        scene.render.filepath = path
        bpy.ops.render.render(write_still=True)
        face = frames[min(f - 1, len(frames) - 1)]
        h, w = face.shape[:2]
        crop = face[40:300, 110:370] if h >= 300 else face
        tiles_top.append(cv2.resize(crop, (256, 256)))
        bottom = cv2.imread(path)
        cv2.putText(bottom, f"frame {f}", (8, 246), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (40, 40, 40), 1, cv2.LINE_AA)
        tiles_bottom.append(bottom)
    sheet = np.vstack([np.hstack(tiles_top), np.hstack(tiles_bottom)])
    cv2.imwrite(args.out, sheet)
    runtime.unregister()
    print(args.out)


if __name__ == "__main__":
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    main()
