"""The figures and numbers of docs/live.md: live mode following the test performance (a contact strip and a
short GIF: the camera frame with its tracked landmarks beside the character's pose the add-on applied), and the
sparse key poses of that performance at three densities.

    python tools/live_figures.py [--out docs]

Only the sample face (scikit-image's astronaut, public domain) and our toon characters' thumbnails appear.
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
sys.path.insert(0, os.path.join(ROOT, "tools"))

PLAN = (("joy", 30, 0.0), ("surprise", 35, 2.2), ("joy", 25, 0.0), ("surprise", 30, 2.2), ("joy", 30, 0.0))


def live_trace(video: str) -> tuple[list[dict], dict]:
    """Run live mode in headless Blender on ``video``; per result: frame, landmarks, label and the pose worn."""
    import bpy

    from bench.live import install_addon

    mod = install_addon()
    connection = mod("session.connection")
    wf = mod("live.workflow")
    connection.start()
    scene = bpy.context.scene
    bpy.ops.deepexpr.add_character(character="pip")
    lp = scene.deepexpr_live
    lp.source, lp.video = "VIDEO", video
    sess = wf.start_live(scene)
    trace: list[dict] = []
    orig = sess.on_progress

    def record(p: dict) -> None:
        orig(p)
        it = p["item"]
        trace.append({"frame": it["frame"], "points": it.get("points"), "label": it.get("label"), "pose": lp.pose_id})

    client = connection.get_client()
    client._pending[sess.request_id].on_progress = record
    while sess.running:
        connection.drain()
        time.sleep(1 / 60)
    entries = dict(sess.entries)
    library = sess.library
    connection.stop()
    return trace, {"entries": entries, "library": library}


def tile(frame: np.ndarray, t: dict, lib: dict, h: int = 160) -> np.ndarray:
    """The camera frame around the face with its landmarks | the pose the character wears, ``h`` tall."""
    img = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR).copy()
    pts = np.asarray(t["points"] or [[320, 240]], np.float64)
    for x, y in pts:
        cv2.circle(img, (round(x), round(y)), 2, (40, 200, 255), -1, cv2.LINE_AA)
    cx, cy = pts.mean(axis=0)
    s = 150
    x0, y0 = int(np.clip(cx - s, 0, img.shape[1] - 2 * s)), int(np.clip(cy - s * 1.1, 0, img.shape[0] - 2 * s))
    face = cv2.resize(img[y0 : y0 + 2 * s, x0 : x0 + 2 * s], (h, h), interpolation=cv2.INTER_AREA)
    e = lib["entries"].get(t["pose"])
    thumb = cv2.imread(os.path.join(lib["library"], e["thumbnail"])) if e else None
    thumb = (
        np.full((h, h, 3), 80, np.uint8) if thumb is None else cv2.resize(thumb, (h, h), interpolation=cv2.INTER_AREA)
    )
    out = np.hstack([face, thumb])
    label = f"#{t['frame']} {t['label'] or '-'} -> {e['label'] if e else '-'}"
    cv2.putText(out, label, (6, h - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def sparse_table(frames: list[np.ndarray], holds) -> list[str]:
    from backend.engine import Engine, EngineConfig
    from backend.keyposes import KeyPoseConfig, key_poses
    from backend.library import builtin_library, load_library
    from backend.live import FrameAnalyzer
    from deepexpr_blender.core.vocabulary import LABELS

    eng = Engine(EngineConfig(device="cpu"))
    an = FrameAnalyzer(eng, load_library(builtin_library()), 5)
    rs = [r for _, r in an.analyze_stream(enumerate(frames))]
    x = np.array([[r.probabilities[lab] for lab in LABELS] for r in rs])
    cands = [[(c["id"], c["score"]) for c in r.candidates] for r in rs]
    lines = [
        "| density | breakdowns | keys (dense) | holds found | arrival error (frames) | release error (frames) "
        "| trajectory distance mean / max | labels agree |",
        "|---:|---:|---|---:|---|---|---|---:|",
    ]
    for density, bd in ((0.0, 0), (0.5, 0), (1.0, 0), (0.5, 2)):
        res = key_poses(np.arange(len(x)), x, LABELS, cands, KeyPoseConfig(density=density, breakdowns=bd))
        main = [k for k in res.keys if k.kind == "key"]
        ends = [k for k in res.keys if k.kind == "hold"]
        arr = [k.frame - h.start for k, h in zip(main, holds)] if len(main) == len(holds) else []
        rel = [k.frame - h.end for k, h in zip(ends, holds)] if len(ends) == len(holds) else []
        r = res.report
        lines.append(
            f"| {density} | {bd} | {r['sparse_keys']} ({r['dense_keys']}) | {len(res.segments)} of {len(holds)} | "
            f"{', '.join(map(str, arr)) or 'n/a'} | {', '.join(map(str, rel)) or 'n/a'} | "
            f"{r['tv_error']:.3f} / {r['tv_error_max']:.2f} | {100 * r['label_agreement']:.0f}% |"
        )
    keys = key_poses(np.arange(len(x)), x, LABELS, cands).keys
    lines += [
        "",
        "Keys at the default density: " + ", ".join(f"{k.frame} {k.kind} {k.label} ({k.pose_id})" for k in keys),
    ]
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(ROOT, "docs"))
    args = ap.parse_args(argv)
    from PIL import Image

    from backend.engine import Engine, EngineConfig
    from backend.performance import performance_frames, write_video

    frames, holds = performance_frames(Engine(EngineConfig(device="cpu")), plan=PLAN, motion=12)
    tmp = tempfile.mkdtemp()
    video = write_video(os.path.join(tmp, "take.avi"), frames, 25)
    lines = sparse_table(frames, holds)
    trace, lib = live_trace(video)
    by_frame = {t["frame"]: t for t in trace if t["points"]}
    seen = np.array(sorted(by_frame))
    picks = [int(seen[np.abs(seen - f).argmin()]) for f in range(0, len(frames), 15)]  # nearest result (drops)
    tiles = [tile(frames[f], by_frame[f], lib) for f in picks[:12]]
    rows = [np.hstack(tiles[i : i + 4]) for i in range(0, len(tiles) - len(tiles) % 4, 4)]
    strip = os.path.join(args.out, "live_strip.jpg")
    cv2.imwrite(strip, np.vstack(rows), [cv2.IMWRITE_JPEG_QUALITY, 85])
    gif = [
        Image.fromarray(cv2.cvtColor(tile(frames[f], by_frame[f], lib, 112), cv2.COLOR_BGR2RGB)).quantize(64)
        for f in sorted(by_frame)[::4]
    ]
    gif_path = os.path.join(args.out, "live.gif")
    gif[0].save(gif_path, save_all=True, append_images=gif[1:], duration=160, loop=0, optimize=True)
    print("\n".join(lines))
    print(json.dumps({"strip": strip, "gif": gif_path, "results": len(trace), "frames": len(frames)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
