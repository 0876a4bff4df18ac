"""Live mirror and video retrieval speed (issue 14): tracking choices, batch retrieval frames/s, live results/s
and frame-to-applied-pose latency in headless Blender, idle and with another process busy on one core, for
backend thread caps 1 and 2.

    python -m bench.live [--out docs/benchmarks.md] [--seconds 8]

The stream is a test performance (the sample face acting held expressions, ``backend.performance``) at
640x480. Live mode runs through the real add-on (installed from its zip into bpy) against the real backend:
the latency is measured from the moment the backend grabbed the frame to the moment the add-on applied the
pose, draining the client as the Live operator's timer does (every 1/60 s).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time

import cv2
import numpy as np

from bench.report import emit, machine

PLAN = (("joy", 30, 0.0), ("surprise", 35, 2.2), ("joy", 25, 0.0), ("surprise", 30, 2.2), ("joy", 30, 0.0))


@contextlib.contextmanager
def busy_core(on: bool):
    """Another process spinning on one core while the block runs."""
    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if on else None
    try:
        time.sleep(0.5 if on else 0)
        yield
    finally:
        if proc is not None:
            proc.kill()
            proc.wait()


def load() -> str:
    return "/".join(f"{v:.1f}" for v in os.getloadavg())


# ---------------------------------------------------------------------------------------------- tracking
def bench_tracking(engine, lines: list[str]) -> None:
    from backend.performance import performance_frames
    from backend.tracking import FaceTracker, TrackerConfig

    lines += [
        "Tracking (in-process, one thread): landmark error against a fresh detection on every frame (mean and "
        "p95, in units of the eye distance), cost per frame of tracking + landmarks, and how many frames a cut "
        "to a blank picture goes unnoticed (10 blank frames after the 182-frame take).",
        "",
        "| motion | mode | error mean | error p95 | ms / frame | detections | blank frames missed |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for motion, period, what in ((12, 90, "slow drift (12 px)"), (40, 16, "fast (up to 15 px / frame)")):
        frames, _ = performance_frames(engine, plan=PLAN, motion=motion, period=period)
        n = len(frames)
        frames = frames + [np.full_like(frames[0], 128)] * 10 + frames[:20]
        ref = []
        for f in frames:
            faces = engine.detector.detect(f)
            ref.append(engine.predictor.predict(f, faces[0].box) if faces else None)
        for mode in ("detect", "landmarks", "flow"):
            tr = FaceTracker(engine.detector, engine.predictor, TrackerConfig(mode=mode, detect_every=10))
            errs, missed = [], 0
            t = time.perf_counter()
            for i, f in enumerate(frames):
                r = tr.track(f)
                if n <= i < n + 10 and r is not None:
                    missed += 1
                if r is not None and ref[i] is not None:
                    iod = np.linalg.norm(ref[i][36:42].mean(0) - ref[i][42:48].mean(0))
                    errs.append(np.linalg.norm(r.points68 - ref[i], axis=1).mean() / iod)
            ms = (time.perf_counter() - t) / len(frames) * 1000
            lines.append(
                f"| {what} | {mode} | {np.mean(errs):.4f} | {np.percentile(errs, 95):.4f} | {ms:.2f} | "
                f"{tr.detections} | {missed} |"
            )
    lines.append("")


# ---------------------------------------------------------------------------------------------- stages
def bench_stages(engine, video: str, n_frames: int, lines: list[str]) -> None:
    """Where a frame's time goes, in-process, one thread: CPU ms per frame of each stage (thread CPU time, so
    the other agents' load moves it less than wall time), for the video path (networks in batches of 8, frames
    decoded ahead in a thread) and the live path (one frame at a time)."""
    from backend.capture import open_video
    from backend.library import builtin_library, load_library
    from backend.live import STAGES, FrameAnalyzer, Prefetch

    lib = load_library(builtin_library())
    engine.crop_networks()  # made once per engine, not timed
    cols = {}
    for name, batch in (("video (batch 8)", 8), ("live (batch 1)", 1)):
        best = None
        for _ in range(3):
            an = FrameAnalyzer(engine, lib, 5)
            t = time.perf_counter()
            with open_video(video) as v, Prefetch(v.frames(1)) as frames:
                for _ in an.analyze_stream(frames, batch=batch):
                    pass
            wall = time.perf_counter() - t
            if best is None or wall < best[0]:
                best = (wall, {k: 1000 * v / an.frames_analyzed for k, v in an.stage_seconds.items()})
        cols[name] = best
    t = time.thread_time()
    with open_video(video) as v:
        for _ in v.frames(1):
            pass
    decode = 1000 * (time.thread_time() - t) / n_frames
    lines += [
        f"Where the time goes (in-process, one thread, the {n_frames}-frame take, best of 3): CPU ms per frame of "
        "each stage of `backend.live.FrameAnalyzer` (track: detection when due + optical flow + 68 landmarks; "
        "align: crops and geometric features; networks: one pass of the shared trunk and both heads; rank: "
        "retrieval against the built-in library), and frames/s of the whole loop (wall clock, decoding in a "
        "thread beside it).",
        "",
        "| stage | " + " | ".join(cols) + " |",
        "|---|" + "---:|" * len(cols),
    ]
    for st in STAGES:
        lines.append(f"| {st} | " + " | ".join(f"{c[1][st]:.2f}" for c in cols.values()) + " |")
    lines.append("| **sum** | " + " | ".join(f"**{sum(c[1].values()):.2f}**" for c in cols.values()) + " |")
    lines.append(f"| decode + colour (reader thread) | {decode:.2f} | {decode:.2f} |")
    lines.append("| frames / s (wall) | " + " | ".join(f"{n_frames / c[0]:.0f}" for c in cols.values()) + " |")
    lines.append("")


# ---------------------------------------------------------------------------------------------- batch
def bench_batch(video: str, n_frames: int, lines: list[str]) -> None:
    from tests.backend_client import BackendProcess

    lines += [
        f"Batch retrieval (`retrieve_batch`, every frame of a {n_frames}-frame 640x480 video, built-in library, "
        "top 5, through `deepexpr serve --stdio`): frames per second, wall clock of the request, median of 3 "
        "requests.",
        "",
        "| backend threads | tracking | idle | one core busy |",
        "|---:|---|---:|---:|",
    ]
    for threads in (1, 2):
        for tracking in ("flow", "detect"):
            row = []
            for loaded in (False, True):
                srv = BackendProcess("--device", "cpu", serve_args=("--threads", str(threads)))
                srv.initialize()
                srv.call("retrieve_batch", {"video": video, "frame_step": 50})  # warm: library index, caches
                rates = []
                with busy_core(loaded):
                    for _ in range(3):
                        t = time.perf_counter()
                        srv.call("retrieve_batch", {"video": video, "frame_step": 1, "tracking": tracking})
                        rates.append(n_frames / (time.perf_counter() - t))
                row.append(statistics.median(rates))
                srv.close()
            lines.append(f"| {threads} | {tracking} | {row[0]:.0f} | {row[1]:.0f} |")
    lines.append("")


# ---------------------------------------------------------------------------------------------- live
def install_addon():
    import bpy  # noqa: I001  (bpy first: it makes addon_utils importable)
    import addon_utils

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools"))
    from build_extension import build

    zip_path = build(tempfile.mkdtemp())
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default", enable_on_install=True)
    module = "bl_ext.user_default.deepexpr_blender"
    addon_utils.enable(module, default_set=True)
    prefs = bpy.context.preferences.addons[module].preferences
    prefs.python, prefs.device = sys.executable, "cpu"
    from importlib import import_module

    return lambda name: import_module(f"{module}.{name}")


def live_run(mod, video: str, threads: int, seconds: float) -> tuple[float, float, float, int]:
    """(results / s, median latency ms, p90 latency ms, dropped) of one live session on ``video``."""
    import bpy

    connection, wf = mod("session.connection"), mod("live.workflow")
    mod("prefs").get().threads = threads  # the add-on's preference: the client is remade when it changes
    client = connection.get_client()
    client.start()
    scene = bpy.context.scene
    if scene.deepexpr.target is None:
        bpy.ops.deepexpr.add_character(character="pip")
    lp = scene.deepexpr_live
    lp.source, lp.video = "VIDEO", video
    sess = wf.start_live(scene)
    lat: list[float] = []
    orig = sess.on_progress

    def timed(p: dict) -> None:  # latency: from the backend grabbing the frame to the pose applied here
        orig(p)
        lat.append(time.time() - p["item"]["grabbed"])

    client._pending[sess.request_id].on_progress = timed
    while not lat:  # the first result (library index, warm-up) is not counted
        connection.drain()
        time.sleep(1 / 60)
    lat.clear()
    t0 = time.monotonic()
    while sess.running and time.monotonic() - t0 < seconds:
        connection.drain()
        time.sleep(1 / 60)  # the Live operator's timer
    elapsed = time.monotonic() - t0
    n = len(lat)
    wf.stop_live(scene)
    connection.drain()
    lat.sort()
    return n / elapsed, 1000 * statistics.median(lat), 1000 * lat[int(0.9 * (len(lat) - 1))], 0


def bench_live(frames: list[np.ndarray], tmp: str, seconds: float, lines: list[str]) -> None:
    from backend.performance import write_video

    mod = install_addon()
    lines += [
        "Live mirror end to end in headless Blender (add-on installed from its zip, real backend): results per "
        "second applied to the character, and the latency from the backend grabbing a frame to the add-on "
        "applying the pose (median, p90), draining every 1/60 s as the Live operator does. A 640x480 video "
        "plays at its own rate as the camera (30 fps like a webcam; 60 fps to find the ceiling).",
        "",
        "| stream | backend threads | load | results / s | latency median ms | latency p90 ms |",
        "|---|---:|---|---:|---:|---:|",
    ]
    for fps in (30, 60):
        video = write_video(os.path.join(tmp, f"live{fps}.avi"), frames * 3, fps)
        for threads in (1, 2):
            for loaded in (False, True):
                with busy_core(loaded):
                    rate, med, p90, _ = live_run(mod, video, threads, seconds)
                lines.append(
                    f"| {fps} fps | {threads} | {'one core busy' if loaded else 'idle'} | {rate:.1f} | "
                    f"{med:.0f} | {p90:.0f} |"
                )
    mod("live.workflow").stop_all("bench done")
    mod("session.connection").stop()
    lines.append("")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=None, help="append the markdown section to this file")
    ap.add_argument("--seconds", type=float, default=8.0, help="length of each live measurement")
    ap.add_argument("--skip", nargs="*", default=[], choices=["tracking", "stages", "batch", "live"])
    args = ap.parse_args(argv)
    import torch

    from backend.engine import Engine, EngineConfig
    from backend.performance import performance_frames, write_video

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    engine = Engine(EngineConfig(device="cpu"))
    tmp = tempfile.mkdtemp()
    frames, _ = performance_frames(engine, plan=PLAN, motion=12)
    video = write_video(os.path.join(tmp, "take.avi"), frames, 25)
    lines = [
        f"### Live mirror and video retrieval, {time.strftime('%Y-%m-%d')}",
        "",
        f"Machine: {machine()}. Load average before the run: {load()} — the 2 cores are shared with other "
        "agents' jobs, so the numbers move with their load.",
        "",
    ]
    if "tracking" not in args.skip:
        bench_tracking(engine, lines)
    if "stages" not in args.skip:
        bench_stages(engine, video, len(frames), lines)
    if "batch" not in args.skip:
        bench_batch(video, len(frames), lines)
    if "live" not in args.skip:
        bench_live(frames, tmp, args.seconds, lines)
    lines.append(f"Load average after the run: {load()}.")
    emit(lines, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
