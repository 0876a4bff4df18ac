"""Expression transition sequences: target landmarks, the paper's Eq. 6 interpolation with easing, and frames
made by the piecewise-affine warp (any resolution) or the landmark-guided GAN (64x64, ``backend.gan``).

Key frames come from another face image (its landmarks brought onto the source face's geometry), from a named
expression (the mean CK+ displacement of that expression, ``assets/expression_deltas.json``, added to the
source face in template space), or from hand-edited landmark sets in a JSON file.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from deepexpr_blender.core import protocol

from . import outputs
from .align import alignment_matrix
from .config import int_in, option
from .errors import DeepExprError, invalid_params
from .landmarks import semantic_from_68
from .limits import MAX_FRAMES, MAX_INTENSITY, MAX_KEYFRAME_FILE, MAX_OUTPUT_PIXELS, WARP_MAX_SIDE

DELTAS_PATH = os.path.join(os.path.dirname(__file__), "assets", "expression_deltas.json")
GAN_SIZE = 64
METHODS = ("warp", "warp+gan", "gan")

EASINGS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "linear": lambda t: t,
    "ease_in": lambda t: t * t,
    "ease_out": lambda t: 1 - (1 - t) ** 2,
    "ease_in_out": lambda t: t * t * (3 - 2 * t),  # smoothstep: zero slope at both keys, like Blender's Bezier
}


@dataclass
class SequenceConfig:
    """How a transition is made (the ``generate`` command's options and ``generate_sequence``'s defaults)."""

    frames: int = option(
        24, f"frames in the transition, both keys included (2..{MAX_FRAMES})", parse=int_in(2, MAX_FRAMES)
    )
    easing: str = option("ease_in_out", "how time moves between key frames", choices=tuple(EASINGS))
    method: str = option(
        "warp",
        "warp: piecewise-affine warp + expression shading + mouth interior at the photo's resolution and colour; "
        "warp+gan: also the GAN's delta; gan: 64x64 gray",
        choices=METHODS,
    )


@functools.lru_cache(maxsize=1)
def expression_deltas() -> dict[str, np.ndarray]:
    with open(DELTAS_PATH, encoding="utf-8") as f:
        return {k: np.asarray(v, np.float64) for k, v in json.load(f)["deltas"].items()}


def _to_template(points68: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    m = alignment_matrix(semantic_from_68(points68), 1)
    return points68 @ m[:, :2].T + m[:, 2], m


def _from_template(t: np.ndarray, m: np.ndarray) -> np.ndarray:
    a, b = m[:, :2], m[:, 2]
    return (t - b) @ np.linalg.inv(a).T


# Intensity 1 of the expressions whose mean displacement is small and easily read as another (anger as sadness,
# fear as sadness or surprise) goes this much beyond the strong CK+ peak: a mild caricature, chosen on FER2013
# val faces judged by the served classifier (docs/evaluation/transitions.md); 1.35 is the most allowed (beyond
# it the faces stop looking like faces: brows into the lids, chin into the lip).
NAMED_GAIN = {"anger": 1.35, "disgust": 1.2, "fear": 1.35, "sadness": 1.35}
# ... and within those, the parts that tell them apart from their neighbours weigh more (FACS: anger is the
# lowered, drawn brows, AU 4, more than the pressed lips and raised chin, which read as sadness or disgust;
# fear is raised-and-drawn brows and wide lids, AU 1+2+4+5, and the face's lower contour; its horizontally
# stretched lips, AU 20, read as a smile). Chosen on FER2013 val (docs/evaluation/transitions.md).
NAMED_REGION_GAIN = {
    "anger": {"brows": 1.5, "jaw": 0.5, "mouth": 0.5},
    "fear": {"brows": 1.5, "eyes": 1.5, "jaw": 1.5, "mouth": 0.5},
}
REGIONS = {"jaw": slice(0, 17), "brows": slice(17, 27), "nose": slice(27, 36), "eyes": slice(36, 48)}
REGIONS["mouth"] = slice(48, 68)


def expression_target(src68: np.ndarray, expression: str, intensity: float = 1.0) -> np.ndarray:
    """The source face's landmarks wearing a named expression (mean CK+ displacement added in template space).
    Intensity 1 is a strong CK+ peak along the mean displacement (``appearance.peak_scale``), for the subtle
    expressions pushed a little further (``NAMED_GAIN``), 0 the source."""
    from .appearance import peak_scale

    if not np.isfinite(intensity) or not 0.0 <= intensity <= 1.0:
        raise invalid_params(f"intensity must be within 0..1, got {intensity}")
    deltas = expression_deltas()
    if expression not in deltas:
        raise invalid_params(f"unknown expression {expression!r}; one of {', '.join(sorted(deltas))}")
    delta = deltas[expression] * (peak_scale(expression) * NAMED_GAIN.get(expression, 1.0))
    for region, gain in NAMED_REGION_GAIN.get(expression, {}).items():
        delta[REGIONS[region]] *= gain
    t, m = _to_template(src68)
    return _from_template(keep_features_apart(close_lips(t + intensity * delta), t), m)


def expression_displacement(src68: np.ndarray, expression: str, amount: float) -> np.ndarray:
    """The source face's landmarks moved ``amount`` times the mean CK+ displacement of ``expression`` (template
    space), with no upper limit: test performances exaggerate on purpose; users go through ``expression_target``."""
    deltas = expression_deltas()
    if expression not in deltas:
        raise invalid_params(f"unknown expression {expression!r}; one of {', '.join(sorted(deltas))}")
    t, m = _to_template(src68)
    return _from_template(close_lips(t + amount * deltas[expression]), m)


# iBUG 68 inner lips, upper over lower (left to right), and the outer lip point over/under each inner one.
_INNER_PAIRS = ((61, 67), (62, 66), (63, 65))
_OUTER_UPPER = (50, 51, 52)
_OUTER_LOWER = (58, 57, 56)
LIP_GAP = 0.002  # half the least gap kept between pressed inner lips (template units): no zero-area triangles


FEATURE_KEEP = 0.2  # a lowered brow, a raised chin keeps at least this share of its source distance to lid, lip


def keep_features_apart(t: np.ndarray, src: np.ndarray, keep: float = FEATURE_KEEP) -> np.ndarray:
    """Target landmarks (template space, y down) whose brows stay above the upper lids and whose chin stays
    below the lower lip: a strongly lowered brow (anger's AU 4) or a chin pushed up (the raised chin of the mean
    anger, disgust and fear displacements) on a face where they sit close already would pass into the lid or
    the lip and fold the warp (a torn brow, a chin doubled over the lip). Each brow and jaw point keeps ``keep``
    of the source's vertical distance to the feature next to it."""
    t = t.copy()
    pairs = (
        (range(17, 22), [36, 37, 38, 39], -1),  # brow above the upper lid
        (range(22, 27), [42, 43, 44, 45], -1),
        (range(4, 13), [48, 59, 58, 57, 56, 55, 54], 1),  # jaw below the lower lip
    )
    for points, curve, side in pairs:
        for i in points:
            s_ref = np.interp(src[i, 0], src[curve, 0], src[curve, 1])
            t_ref = np.interp(t[i, 0], t[curve, 0], t[curve, 1])
            least = keep * max(side * (src[i, 1] - s_ref), 0.0)
            if side * (t[i, 1] - t_ref) < least:
                t[i, 1] = t_ref + side * least
    return t


def close_lips(t: np.ndarray) -> np.ndarray:
    """Landmarks (template space, y down) whose lips do not pass through each other. A mean displacement that
    presses the lips (anger's and disgust's AU 23/24, the chin pushed up) added to a face whose mouth is closed
    already moves the lower inner lip above the upper one: the warp then folds the lips over (a torn, doubled
    mouth). Crossed inner lips meet at their middle (pressed shut); an outer lip point stays outside its inner
    one."""
    t = t.copy()
    for (u, lo), ou, ol in zip(_INNER_PAIRS, _OUTER_UPPER, _OUTER_LOWER):
        if t[lo, 1] < t[u, 1] + 2 * LIP_GAP:
            mid = (t[u, 1] + t[lo, 1]) / 2
            t[u, 1], t[lo, 1] = mid - LIP_GAP, mid + LIP_GAP
        t[ou, 1] = min(t[ou, 1], t[u, 1])
        t[ol, 1] = max(t[ol, 1], t[lo, 1])
    return t


def image_target(src68: np.ndarray, tgt68: np.ndarray) -> np.ndarray:
    """Another face's expression on the source face: the target's inner landmarks (brows, eyes, nose, mouth)
    in the source's frame; the source's jaw line, its chin dropped as far as the target's lower lip."""
    ts, ms = _to_template(src68)
    tt, _ = _to_template(tgt68)
    out = ts.copy()
    out[17:] = tt[17:]
    drop = (tt[57, 1] - tt[33, 1]) - (ts[57, 1] - ts[33, 1])  # lower lip below the nose, target vs source
    w = np.array([0, 0, 0, 0.2, 0.5, 0.8, 1, 1, 1, 1, 1, 0.8, 0.5, 0.2, 0, 0, 0])
    out[:17, 1] += w * max(drop, 0.0)
    return _from_template(out, ms)


def interpolate(keys: list[tuple[float, np.ndarray]], n_frames: int, easing: str = "linear") -> list[np.ndarray]:
    """Landmarks for each of ``n_frames`` frames: Eq. 6 of Qiao et al. (linear in t) between consecutive key
    frames, t shaped by ``easing``. ``keys``: (position in 0..n_frames-1, 68x2 landmarks), sorted."""
    if easing not in EASINGS:
        raise invalid_params(f"unknown easing {easing!r}; one of {', '.join(EASINGS)}")
    if n_frames < 2 or len(keys) < 2:
        raise invalid_params("need at least 2 frames and 2 key frames")
    keys = sorted(keys, key=lambda k: k[0])
    out = []
    for f in range(n_frames):
        j = max(0, min(len(keys) - 2, int(np.searchsorted([k[0] for k in keys], f, side="right")) - 1))
        (f0, l0), (f1, l1) = keys[j], keys[j + 1]
        t = 0.0 if f1 == f0 else float(np.clip((f - f0) / (f1 - f0), 0, 1))
        e = float(EASINGS[easing](np.array(t)))
        out.append((1 - e) * l0 + e * l1)
    return out


def keyframes_from_file(
    path: str, src68: np.ndarray, n_frames: int, image_size: tuple[int, int] | None = None
) -> list[tuple[float, np.ndarray]]:
    """JSON ``{"keyframes": [{"t": 0..1 | "frame": n, "landmarks": [[x, y] x 68] | "expression": name}, ...]}``;
    landmarks in source-image pixels. A first key at t = 0 with the source landmarks is added if missing.
    Read as strict JSON (no NaN / Infinity); positions must lie in the sequence, intensities in
    -MAX_INTENSITY..MAX_INTENSITY, landmarks within the image grown by its own size on every side."""
    try:
        if os.path.getsize(path) > MAX_KEYFRAME_FILE:
            raise ValueError(f"over {MAX_KEYFRAME_FILE >> 20} MiB")
        with open(path, encoding="utf-8") as f:
            data = protocol.loads(f.read())
        keys = []
        for k in data["keyframes"]:
            pos = float(k["frame"]) if "frame" in k else float(k["t"]) * (n_frames - 1)
            if not -1e-6 <= pos <= n_frames - 1 + 1e-6:
                raise ValueError(f"key frame at {pos:g} lies outside the frames 0..{n_frames - 1}")
            if "landmarks" in k:
                lm = np.asarray(k["landmarks"], np.float64)
                if lm.shape != (68, 2):
                    raise ValueError(f"key frame at {pos:g}: landmarks must be 68 [x, y] pairs")
                if image_size is not None and not _inside_grown(lm, image_size):
                    raise ValueError(f"key frame at {pos:g}: landmarks lie far outside the {image_size} image")
            else:
                intensity = float(k.get("intensity", 1.0))
                if not abs(intensity) <= MAX_INTENSITY:
                    raise ValueError(f"key frame at {pos:g}: intensity must be within ±{MAX_INTENSITY}")
                lm = expression_target(src68, k["expression"], intensity)
            keys.append((pos, lm))
    except (OSError, KeyError, TypeError, ValueError, RecursionError, AttributeError) as exc:
        raise invalid_params(f"key frame file {path}: {type(exc).__name__}: {exc}") from None
    if not any(abs(p) < 1e-6 for p, _ in keys):
        keys.insert(0, (0.0, np.asarray(src68, np.float64)))
    return keys


def _inside_grown(points: np.ndarray, size: tuple[int, int]) -> bool:
    w, h = size
    x, y = points[:, 0], points[:, 1]
    return bool(
        np.isfinite(points).all() and (x >= -w).all() and (x <= 2 * w).all() and (y >= -h).all() and (y <= 2 * h).all()
    )


@dataclass
class Crop64:
    """The GAN's frame: the source face aligned to 64x64 gray, and the map from image to crop pixels."""

    image: np.ndarray
    matrix: np.ndarray

    def points(self, pts68: np.ndarray) -> np.ndarray:
        return pts68 @ self.matrix[:, :2].T + self.matrix[:, 2]


def gan_crop(rgb: np.ndarray, src68: np.ndarray, size: int = GAN_SIZE) -> Crop64:
    m = alignment_matrix(semantic_from_68(src68), size)
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) if rgb.ndim == 3 else rgb
    return Crop64(cv2.warpAffine(gray, m, (size, size), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE), m)


def normalize_landmarks(pts: np.ndarray, size: int = GAN_SIZE) -> np.ndarray:
    return pts / (size - 1) * 2 - 1


def render_gan_frames(model, crop: Crop64, targets: list[np.ndarray], batch: int = 64) -> list[np.ndarray]:
    """64x64 uint8 frames from the GAN for each target landmark set (in source-image pixels)."""
    import torch

    x = torch.from_numpy(crop.image.astype(np.float32) / 127.5 - 1)[None, None]
    out = []
    with torch.inference_mode():
        for i in range(0, len(targets), batch):
            lm = np.stack([normalize_landmarks(crop.points(t)) for t in targets[i : i + batch]]).astype(np.float32)
            y = model(x.expand(len(lm), -1, -1, -1), torch.from_numpy(lm))
            out += [np.clip((f[0].numpy() + 1) * 127.5, 0, 255).astype(np.uint8) for f in y]
    return out


def check_method(method: str) -> None:
    if method not in METHODS:
        raise DeepExprError(protocol.INVALID_PARAMS, f"unknown method {method!r}; one of {', '.join(METHODS)}")


def check_budget(frames: int, width: int, height: int) -> None:
    """Refuse, before any work, a sequence whose frames would exceed MAX_OUTPUT_PIXELS."""
    total = frames * width * height
    if total > MAX_OUTPUT_PIXELS:
        most = max(1, MAX_OUTPUT_PIXELS // (width * height))
        raise DeepExprError(
            protocol.INVALID_PARAMS,
            f"{frames} frames of {width}x{height} px are {total / 1e6:.0f} MP of output, over the "
            f"{MAX_OUTPUT_PIXELS / 1e6:.0f} MP one request may write; ask for at most {most} frames or a smaller image",
            {"frames": frames, "width": width, "height": height, "budget_pixels": MAX_OUTPUT_PIXELS},
        )


def generate(
    engine: Any,
    source: str,
    out: str,
    cfg: SequenceConfig | None = None,
    expression: str | None = None,
    target: str | None = None,
    keyframes: str | None = None,
    progress: Callable[[int, int, str], None] | None = None,
    check_cancelled: Callable[[dict], None] | None = None,
) -> dict:
    """An expression transition from the face in ``source`` to exactly one of a named ``expression``, the
    expression of the face in ``target``, or the ``keyframes`` of a JSON file: PNG frames in ``out``.
    ``progress(done, total, path)`` after each frame; ``check_cancelled(partial)`` raises to stop."""
    cfg = cfg or SequenceConfig()
    check_method(cfg.method)
    if sum(v is not None for v in (expression, target, keyframes)) != 1:
        raise DeepExprError(protocol.INVALID_PARAMS, "give exactly one of expression, target, keyframes")
    frames = cfg.frames
    fa = engine.analyze(source)
    src = fa.points68
    if expression is not None:
        keys = [(0.0, src), (frames - 1.0, expression_target(src, expression))]
    elif target is not None:
        keys = [(0.0, src), (frames - 1.0, image_target(src, engine.analyze(target).points68))]
    else:
        keys = keyframes_from_file(keyframes, fa.to_original(src), frames, fa.decoded.original_size)
        keys = [(p, lm * fa.decoded.scale) for p, lm in keys]  # file landmarks are in original pixels
    path = interpolate(keys, frames, cfg.easing)
    ow, oh = fa.decoded.original_size
    work = 1.0 if cfg.method == "gan" else min(1.0, WARP_MAX_SIDE / max(ow, oh))
    fw, fh = (GAN_SIZE, GAN_SIZE) if cfg.method == "gan" else (round(ow * work), round(oh * work))
    check_budget(frames, fw, fh)
    out_dir = outputs.folder(out)
    check = (lambda: check_cancelled({"frames": written})) if check_cancelled else None
    if cfg.method == "gan":
        images = render_gan_frames(engine.gan.module, gan_crop(fa.decoded.rgb, src), path)
        render = images.__getitem__
        ends = [fa.to_original(path[0]), fa.to_original(path[-1])]
    else:
        # The warp works on its own copy of the photo: at most WARP_MAX_SIDE, never upscaled (the engine's copy
        # may be rescaled differently for detection).
        # --- hook: warp, then refine (backend.refine: data-driven shading, mouth interior, optional GAN delta)
        from .appearance import load_appearance
        from .imageio import MAX_PIXELS, decode_image
        from .refine import FrameRenderer

        full = decode_image(source, max_side=WARP_MAX_SIDE, max_pixels=MAX_PIXELS, min_side=0)
        to_work = full.scale / fa.decoded.scale
        path = [lm * to_work for lm in path]
        gan = engine.gan.module if cfg.method == "warp+gan" else None
        bgr = cv2.cvtColor(full.rgb, cv2.COLOR_RGB2BGR)
        renderer = FrameRenderer(bgr, src * to_work, path, gan, appearance=load_appearance())
        render = lambda i: renderer.render(i, check)  # noqa: E731
        # --- end hook
        fh, fw = full.rgb.shape[:2]
        ends = [path[0] / full.scale, path[-1] / full.scale]
    written: list[str] = []
    for i in range(len(path)):
        if check:
            check()
        p = os.path.join(out_dir, f"frame_{i:04d}.png")
        outputs.write_image(p, render(i))
        written.append(p)
        if progress:
            progress(i + 1, frames, p)
    return {
        **fa.describe(),
        "frames": written,
        "method": cfg.method,
        "easing": cfg.easing,
        "size": [fw, fh],
        "frame_scale": work,  # frame pixels per original-image pixel
        "landmarks": [np.round(lm, 2).tolist() for lm in ends],  # first and last key, original-image pixels
    }
