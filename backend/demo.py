"""The README's main job on the built-in default: the sample face through the whole pipeline.

    python -m backend.demo [--out out/demo] [--image PATH]

Uses scikit-image's astronaut photo (public domain, NASA) unless --image is given, and writes the drawn
landmarks, the aligned crop and a JSON summary under --out.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys

from deepexpr_blender.core import protocol

from .errors import DeepExprError

log = logging.getLogger(__name__)


def sample_face(out_dir: str) -> str:
    import cv2
    import skimage.data

    path = os.path.join(out_dir, "sample_face.png")
    cv2.imwrite(path, cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR))
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join("out", "demo"))
    ap.add_argument("--image", default=None, help="a face photo (default: the built-in sample face)")
    ap.add_argument("--device", default="auto")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    os.makedirs(args.out, exist_ok=True)
    from .engine import Engine, EngineConfig

    image = args.image or sample_face(args.out)
    engine = Engine(EngineConfig(device=args.device))
    info = engine.info()
    print(f"DeepExpr backend {info['backend_version']} on {info['device']} (protocol {info['protocol_version']})")
    summary: dict = {"image": image, "engine": info}
    models = info["models"]
    if not models["expression"]["loaded"]:
        print(f"note: {models['expression']['error']}")
    try:
        summary["detect"] = engine.draw(image, os.path.join(args.out, "landmarks.png"))
        summary["landmarks"] = engine.landmarks(image)
        summary["align"] = engine.align(image, os.path.join(args.out, "aligned.png"), size=128)
    except DeepExprError as exc:
        print(f"deepexpr: {exc}", file=sys.stderr)
        return 2
    d = summary["detect"]
    print(f"face: box {d['box']} ({d['faces_found']} found); landmarks drawn in {d['drawn']}")
    print(f"aligned crop: {summary['align']['aligned']}")
    print("geometry: " + ", ".join(f"{k} {v:+.2f}" for k, v in summary["landmarks"]["geometry"].items()))
    try:
        summary["classify"] = c = engine.classify(image)
        top = sorted(c["probabilities"].items(), key=lambda kv: -kv[1])[:3]
        print(f"expression: {c['label']} (" + ", ".join(f"{k} {v:.2f}" for k, v in top) + ")")
    except DeepExprError as exc:
        summary["classify"] = {"error": str(exc)}
        print(f"expression: unavailable ({exc})")
    summary["retrieve"] = _retrieve(engine, image, args.out)
    summary["transitions"] = _transitions(engine, image, args.out)
    with open(os.path.join(args.out, "summary.json"), "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=2)
    print(f"summary: {os.path.join(args.out, 'summary.json')}")
    return 0


def _retrieve(engine, image: str, out: str) -> dict:
    from .library import builtin_library
    from .sheet import retrieval_sheet

    try:
        res = engine.retriever.retrieve(image, builtin_library(), top_k=5)
    except DeepExprError as exc:
        print(f"poses: unavailable ({exc})")
        return {"error": str(exc)}
    res["sheet"] = retrieval_sheet(image, res, os.path.join(out, "poses.png"))
    print(f"top 5 character poses ({res['model']} network, {res['library_size']} poses):")
    for c in res["candidates"]:
        print(f"  {c['rank']}. {c['id']:20s} {c['label']:9s} score {c['score']:.3f}")
    print(f"pose sheet: {res['sheet']}")
    return res


def _transitions(engine, image: str, out: str) -> dict:
    from .sequence import SequenceConfig, generate
    from .sheet import frames_gif, frames_sheet

    results = {}
    for method in ("warp", "gan"):
        folder = os.path.join(out, f"transition_{method}")
        try:
            res = generate(engine, image, folder, SequenceConfig(frames=12, method=method), expression="surprise")
        except DeepExprError as exc:
            print(f"transition ({method}): unavailable ({exc})")
            results[method] = {"error": str(exc)}
            continue
        res["sheet"] = frames_sheet(res["frames"], os.path.join(out, f"transition_{method}.png"), columns=6)
        res["gif"] = frames_gif(res["frames"], os.path.join(out, f"transition_{method}.gif"))
        print(f"transition to surprise ({method}): {res['sheet']}, {res['gif']}")
        results[method] = res
    try:
        results["sheet"] = expressions_sheet(engine, image, os.path.join(out, "transitions_sheet.png"))
        print(f"six expressions at full resolution and colour (warp, then refine): {results['sheet']}")
    except DeepExprError as exc:
        results["sheet"] = {"error": str(exc)}
    return results


def expressions_sheet(engine, image: str, out: str, steps: int = 5) -> str:
    """Rows: the six emotions; columns: ``steps`` frames of each transition, the face region cut from the
    full-resolution colour frames at 1:1 (no rescaling)."""
    import tempfile

    import cv2
    import numpy as np

    from .sequence import SequenceConfig, generate

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for e in ("anger", "disgust", "fear", "joy", "sadness", "surprise"):
            res = generate(engine, image, os.path.join(tmp, e), SequenceConfig(frames=steps), expression=e)
            pts = np.asarray(res["landmarks"], np.float64).reshape(-1, 2)
            frames = [cv2.imread(f) for f in res["frames"]]
            h, w = frames[0].shape[:2]
            c, ext = pts.mean(0), np.ptp(pts, 0).max() * 0.85
            x0, y0 = (int(max(0, c[0] - ext)), int(max(0, c[1] - ext * 1.1)))
            x1, y1 = (int(min(w, c[0] + ext)), int(min(h, c[1] + ext * 0.9)))
            row = np.hstack([f[y0:y1, x0:x1] for f in frames])
            band = np.full((row.shape[0], 110, 3), 255, np.uint8)
            cv2.putText(band, e, (6, row.shape[0] // 2), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (30, 30, 30), 1, cv2.LINE_AA)
            rows.append(np.hstack([band, row]))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    if not cv2.imwrite(out, np.vstack(rows)):
        raise DeepExprError(protocol.INVALID_PARAMS, f"cannot write {out}")
    return out


if __name__ == "__main__":
    sys.exit(main())
