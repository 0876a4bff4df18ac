"""``deepexpr`` command line: the engine's stages, capture, and the stdio server."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import os
import sys
from dataclasses import dataclass
from typing import Any

from deepexpr_blender.core import protocol
from deepexpr_blender.core.vocabulary import DEFAULT_TOP_K, LABELS

from . import outputs
from .config import add_options, from_args, int_in, option
from .errors import DeepExprError
from .limits import ALIGN_SIZES, MAX_TOP_K

log = logging.getLogger("deepexpr")


def _box(text: str) -> list[float]:
    try:
        vals = [float(v) for v in text.split(",")]
    except ValueError:
        vals = []
    if len(vals) != 4 or not all(math.isfinite(v) for v in vals):
        raise argparse.ArgumentTypeError("box must be LEFT,TOP,RIGHT,BOTTOM, four finite numbers")
    return vals


@dataclass
class LogConfig:
    """Where the backend's diagnostics go (stdout is for results, or for the protocol when serving)."""

    log_level: str = option("WARNING", "log level", choices=("DEBUG", "INFO", "WARNING", "ERROR"), parse=str.upper)
    log_file: str | None = option(None, "also write logs to this file")


def build_parser() -> argparse.ArgumentParser:
    from .app import ServeConfig
    from .engine import EngineConfig
    from .scoring import RetrievalWeights
    from .sequence import SequenceConfig

    p = argparse.ArgumentParser(prog="deepexpr", description="DeepExpr backend: faces, expressions, poses.")
    add_options(p, EngineConfig)
    add_options(p, LogConfig)
    sub = p.add_subparsers(dest="command", required=True)
    for name, helptext in (
        ("detect", "find the largest face"),
        ("landmarks", "68 landmarks + geometric features"),
        ("classify", "expression probabilities"),
        ("embed", "retrieval embedding"),
    ):
        sp = sub.add_parser(name, help=helptext)
        sp.add_argument("image")
        sp.add_argument("--json", action="store_true", help="print JSON")
        sp.add_argument("--box", type=_box, help="LEFT,TOP,RIGHT,BOTTOM: skip detection and use this face box")
        if name == "detect":
            sp.add_argument("--draw", metavar="OUT.png", help="write the image with the box and landmarks drawn")
    sp = sub.add_parser("align", help="write the aligned face crop")
    sp.add_argument("image")
    sp.add_argument("--out", required=True)
    sp.add_argument("--size", type=int_in(*ALIGN_SIZES), default=128, help="crop side in pixels (%d..%d)" % ALIGN_SIZES)
    sp.add_argument("--json", action="store_true")
    sp.add_argument("--box", type=_box)
    sp = sub.add_parser("retrieve", help="rank a character pose library against the face (DeepExpr)")
    sp.add_argument("image")
    sp.add_argument("--library", default=None, help="library folder (default: the built-in characters)")
    sp.add_argument("--top-k", type=int_in(1, MAX_TOP_K), default=DEFAULT_TOP_K, help=f"candidates (1..{MAX_TOP_K})")
    add_options(sp, RetrievalWeights)
    sp.add_argument("--sheet", metavar="OUT.png", help="write the query beside its candidates")
    sp.add_argument("--json", action="store_true")
    sp.add_argument("--box", type=_box)
    sp = sub.add_parser("generate", help="an expression transition from one face image")
    sp.add_argument("--source", required=True, help="face image")
    g = sp.add_mutually_exclusive_group(required=True)
    g.add_argument("--target", help="another face image whose expression to reach")
    g.add_argument("--expression", choices=LABELS)
    g.add_argument("--keyframes", help="JSON landmark key frames (see docs/sequences.md)")
    add_options(sp, SequenceConfig)
    sp.add_argument("--out", required=True, help="folder for the PNG frames")
    sp.add_argument("--sheet", help="also write a contact sheet PNG of the frames")
    sp.add_argument("--gif", help="also write an animated GIF")
    sp.add_argument("--json", action="store_true")
    sp = sub.add_parser("capture", help="grab one frame from a webcam index or a video file / URL")
    sp.add_argument("--source", default="0", help="webcam index (0) or video path / URL")
    sp.add_argument("--frame", type=int_in(0, 1 << 31), default=None, help="frame index in a video file")
    sp.add_argument("--out", required=True)
    sp.add_argument("--json", action="store_true")
    sp = sub.add_parser("serve", help="serve JSON-RPC 2.0 (docs/protocol.md)")
    sp.add_argument("--stdio", action="store_true", required=True, help="speak over stdin/stdout")
    add_options(sp, ServeConfig)
    return p


def _summary(command: str, res: dict) -> str:
    lines = []
    if "box" in res:
        lines.append(
            f"face box {res['box']} (faces found: {res['faces_found']}"
            + (", cut by the border" if res.get("truncated") else "")
            + ")"
        )
    if res.get("downscaled"):
        lines.append(
            f"image {res['image_size'][0]}x{res['image_size'][1]} processed at scale {res['processing_scale']:.3f}"
        )
    if command == "landmarks":
        lines.append(f"{len(res['points'])} landmarks")
        lines += [f"  {k:18s} {v:+.3f}" for k, v in res["geometry"].items()]
    if command == "classify":
        lines.append(f"expression: {res['label']}")
        lines += [f"  {k:9s} {v:.3f}" for k, v in sorted(res["probabilities"].items(), key=lambda kv: -kv[1])]
    if command == "embed":
        lines.append(f"embedding: {len(res['embedding'])} values")
    if command == "retrieve":
        lines.append(
            f"expression: {res['label']}; top {len(res['candidates'])} of {res['library_size']} poses "
            f"in {res['library']}:"
        )
        lines += [
            f"  {c['rank']}. {c['id']:24s} {str(c['label']):9s} score {c['score']:.3f} (JS {c['js']:.3f}, "
            f"geo {c['geo']:.3f})"
            for c in res["candidates"]
        ]
    if command == "generate":
        lines.append(
            f"{len(res['frames'])} frames ({res['method']}, {res['easing']}) in {os.path.dirname(res['frames'][0])}"
        )
    for key in ("drawn", "aligned", "path", "sheet", "gif"):
        if key in res:
            lines.append(f"wrote {res[key]}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> Any:
    if args.command == "capture":
        from .capture import capture_frame

        return capture_frame(args.source, args.out, frame=args.frame)
    from .engine import Engine, EngineConfig

    engine = Engine(from_args(EngineConfig, args))
    if args.command == "detect" and args.draw:
        return engine.draw(args.image, args.draw, box=args.box)
    if args.command == "align":
        return engine.align(args.image, args.out, size=args.size, box=args.box)
    if args.command == "generate":
        from .sequence import SequenceConfig, generate
        from .sheet import frames_gif, frames_sheet

        res = generate(
            engine,
            args.source,
            args.out,
            from_args(SequenceConfig, args),
            expression=args.expression,
            target=args.target,
            keyframes=args.keyframes,
        )
        if args.sheet:
            res["sheet"] = frames_sheet(res["frames"], args.sheet)
        if args.gif:
            res["gif"] = frames_gif(res["frames"], args.gif)
        return res
    if args.command == "retrieve":
        from .library import builtin_library
        from .scoring import RetrievalWeights

        library = args.library or builtin_library()
        weights = from_args(RetrievalWeights, args)
        res = engine.retriever.retrieve(args.image, library, top_k=args.top_k, weights=weights, box=args.box)
        if args.sheet:
            from .sheet import retrieval_sheet

            res["sheet"] = retrieval_sheet(args.image, res, args.sheet)
        return res
    return getattr(engine, args.command)(args.image, box=args.box)


def setup_logging(level: str, log_file: str | None) -> None:
    """Logs to stderr (and ``log_file``): stdout holds results, or the protocol when serving."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file:
        handlers.append(logging.FileHandler(log_file, encoding="utf-8"))
    logging.basicConfig(
        level=level.upper(), handlers=handlers, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


def serve(args: argparse.Namespace) -> int:
    from .app import ServeConfig, serve_stdio
    from .engine import DEVICES, Engine, EngineConfig

    base = from_args(EngineConfig, args)

    def factory(options: dict) -> Engine:
        device = options.get("device", base.device)
        if device not in DEVICES:
            raise DeepExprError(protocol.INVALID_PARAMS, f"unknown device {device!r}; one of {', '.join(DEVICES)}")
        return Engine(dataclasses.replace(base, device=device))

    return serve_stdio(factory, from_args(ServeConfig, args))


def fail(args: argparse.Namespace, exc: DeepExprError) -> int:
    """The CLI's promise: every error is exit code 2 with a message naming it (and JSON with --json)."""
    if getattr(args, "json", False):
        print(json.dumps({"error": {"code": exc.code, "name": exc.name, "message": exc.message}}))
    print(f"deepexpr: {exc}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)  # usage errors: argparse's message, exit 2
    try:
        setup_logging(args.log_level, args.log_file)
    except OSError as exc:
        return fail(args, outputs.failed(args.log_file, exc.strerror or str(exc)))
    if args.command == "serve":
        return serve(args)
    try:
        res = run(args)
    except DeepExprError as exc:
        return fail(args, exc)
    except Exception as exc:  # a bug: a message, and the traceback only when asked for
        log.debug("internal error", exc_info=True)
        hint = "" if log.isEnabledFor(logging.DEBUG) else " (--log-level DEBUG shows the traceback)"
        return fail(args, DeepExprError(protocol.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}{hint}"))
    print(json.dumps(res) if args.json else _summary(args.command, res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
