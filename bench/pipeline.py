"""Per-stage latency of the perception pipeline on a 640x480 webcam-like frame, and the server's overhead.

    python -m bench.pipeline [--repeats 50] [--out docs/benchmarks.md]

Stages: decode (PNG from disk), detect (dlib HOG), landmarks (68 points), align (48x48 crop), classify at
batch 1 and 64 (expression network, random weights if none is installed: timing does not depend on them),
the whole single-frame pipeline, and a full JSON-RPC round trip through ``deepexpr serve --stdio``.
The server's own overhead is the round trip minus the same engine call made in-process.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

import cv2
import torch

from bench.report import emit, machine


def timeit(fn, repeats: int, warmup: int = 3) -> tuple[float, float]:
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t) * 1000)
    ts.sort()
    return statistics.median(ts), ts[min(len(ts) - 1, int(round(0.95 * (len(ts) - 1))))]


def webcam_frame(path: str) -> None:
    import skimage.data

    head = skimage.data.astronaut()[0:300, 80:480]  # 400x300 around the face
    cv2.imwrite(path, cv2.cvtColor(cv2.resize(head, (640, 480)), cv2.COLOR_RGB2BGR))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=50)
    ap.add_argument("--out", default=None, help="write a markdown section to this file (appended)")
    args = ap.parse_args(argv)
    torch.set_num_threads(max(1, os.cpu_count() or 1))

    from backend.align import align_face68
    from backend.calibration import probabilities
    from backend.engine import DEFAULT_EXPRESSION_MODEL, Engine, EngineConfig
    from backend.imageio import decode_image
    from backend.models import ExpressionNet, ExpressionNetConfig, ModelCard, save_model
    from tests.backend_client import BackendProcess

    tmp = tempfile.mkdtemp()
    frame = os.path.join(tmp, "frame.png")
    webcam_frame(frame)
    model = DEFAULT_EXPRESSION_MODEL
    if not os.path.exists(model):
        cfg = ExpressionNetConfig(input_size=48)
        model = save_model(
            ExpressionNet(cfg),
            ModelCard("ExpressionNet", {**cfg.__dict__, "widths": list(cfg.widths)}, input={"size": 48}),
            os.path.join(tmp, "random"),
        )
    eng = Engine(EngineConfig(device="cpu", expression_model=model))
    size = int(eng.expression.card.input.get("size", 48))
    dec = decode_image(frame)
    face = eng.detector.largest(dec.rgb)
    pts = eng.predictor.predict(dec.rgb, face.box)
    fa = eng.analyze(frame)
    x1 = eng.input_tensor([fa])
    x64 = x1.repeat(64, 1, 1, 1)
    r = args.repeats
    rows = [
        ("decode (PNG, 640x480)", *timeit(lambda: decode_image(frame), r)),
        ("detect (HOG, 480 px side)", *timeit(lambda: eng.detector.largest(dec.rgb), r)),
        ("landmarks (68 points)", *timeit(lambda: eng.predictor.predict(dec.rgb, face.box), r)),
        (f"align ({size}x{size} crop)", *timeit(lambda: align_face68(dec.rgb, pts, size=size), r)),
        ("classify, batch 1", *timeit(lambda: eng.classify_tensor(x1), r)),
        ("classify, batch 64 (per batch)", *timeit(lambda: eng.classify_tensor(x64), max(5, r // 5))),
        ("calibrated probabilities (flip TTA + geometry head)", *timeit(lambda: probabilities(eng, [fa]), r)),
        ("**single-frame pipeline** (decode → classify)", *timeit(lambda: eng.classify(frame), r)),
    ]
    srv = BackendProcess("--expression-model", model, "--device", "cpu")
    srv.initialize()
    rt = timeit(lambda: srv.call("classify", {"image": frame}), r)
    inproc = timeit(lambda: eng.classify(frame), r)
    srv.close()
    rows.append(("server round trip (classify)", *rt))
    rows.append(("server overhead (round trip − in-process)", rt[0] - inproc[0], float("nan")))
    lines = [
        f"### Perception pipeline, {time.strftime('%Y-%m-%d')}",
        "",
        f"Machine: {machine()}.",
        "",
        f"640x480 frame, face ≈ 150 px wide, {r} repeats after 3 warm-ups.",
        "",
        "| stage | median ms | p95 ms |",
        "|---|---:|---:|",
    ]
    for name, med, p95 in rows:
        lines.append(f"| {name} | {med:.2f} | {'' if p95 != p95 else f'{p95:.2f}'} |")
    emit(lines, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
