"""Batch retrieval speed by backend threads, with Blender idle and with Blender busy rendering.

    python tools/bench_batch_threads.py [--frames 48] [--threads 1 2] [--repeat 2]

The add-on's client starts the backend with ``serve --threads N`` (the *Backend threads* preference) and runs
``retrieve_batch`` over a video of the sample face (every frame, the built-in library), once while nothing
else runs and once while a headless Blender renders Workbench frames in a loop beside it (what an animator's
Blender does while a batch runs). Prints a Markdown table: median seconds per batch and frames per second.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

BUSY_BLENDER = """
import bpy, sys
bpy.ops.wm.read_factory_settings()
scene = bpy.context.scene
scene.render.engine = "BLENDER_WORKBENCH"
scene.render.resolution_x, scene.render.resolution_y = 1280, 720
bpy.ops.mesh.primitive_monkey_add(location=(0, 0, 1))
bpy.ops.object.modifier_add(type="SUBSURF")
bpy.context.object.modifiers[0].levels = bpy.context.object.modifiers[0].render_levels = 3
scene.render.filepath = sys.argv[-1]
while True:
    bpy.ops.render.render(write_still=True)
"""


def make_video(out: str, frames: int) -> str:
    import cv2

    from backend.demo import sample_face

    face = cv2.imread(sample_face(out))
    path = os.path.join(out, "performance.avi")
    wr = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), 24, (face.shape[1], face.shape[0]))
    for i in range(frames):
        wr.write(face if (i // 12) % 2 == 0 else cv2.flip(face, 1))
    wr.release()
    return path


def run_batch(threads: int, video: str) -> float:
    from deepexpr_blender.client import BackendClient

    client = BackendClient(sys.executable, device="cpu", threads=threads)
    try:
        info = client.start(timeout=120)
        assert info["threads"] == threads, info
        client.call("retrieve_batch", {"video": video, "frame_step": 1, "top_k": 5}, timeout=600)  # warm-up
        t0 = time.perf_counter()
        client.call("retrieve_batch", {"video": video, "frame_step": 1, "top_k": 5}, timeout=600)
        return time.perf_counter() - t0
    finally:
        client.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=48)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    load = os.getloadavg()
    tmp = tempfile.mkdtemp(prefix="deepexpr-bench-")
    video = make_video(tmp, args.frames)
    rows = []
    for busy in (False, True):
        proc = None
        if busy:
            script = os.path.join(tmp, "busy.py")
            open(script, "w").write(BUSY_BLENDER)
            env = {**os.environ, "BLENDER_USER_RESOURCES": os.path.join(tmp, "blender")}
            proc = subprocess.Popen(
                [sys.executable, script, os.path.join(tmp, "busy.png")],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(5)
        try:
            for threads in args.threads:
                times = [run_batch(threads, video) for _ in range(args.repeat)]
                rows.append((busy, threads, statistics.median(times)))
        finally:
            if proc is not None:
                proc.kill()
                proc.wait()
    print(f"Machine: {os.cpu_count()} CPU cores; load average before the run {load[0]:.1f}; {args.frames} frames.\n")
    print("| Blender | backend threads | seconds per batch | frames / s |")
    print("|---|---|---|---|")
    for busy, threads, sec in rows:
        print(f"| {'busy rendering' if busy else 'idle'} | {threads} | {sec:.1f} | {args.frames / sec:.1f} |")


if __name__ == "__main__":
    main()
