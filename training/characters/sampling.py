"""Sampling expressions (AU intensities) and views for the character renderer: deterministic per image."""

from __future__ import annotations

import hashlib
import random

from . import load_expression_table
from .scene import View

BACKGROUNDS = (
    (0.93, 0.93, 0.95),
    (0.85, 0.9, 0.97),
    (0.97, 0.92, 0.85),
    (0.88, 0.95, 0.88),
    (0.8, 0.8, 0.82),
    (0.96, 0.88, 0.92),
)


def image_rng(seed: int, *parts: object) -> random.Random:
    """An RNG that depends only on the seed and the image's identity (so renders are resumable and
    order-independent)."""
    h = hashlib.sha256(("|".join(map(str, (seed, *parts)))).encode()).digest()
    return random.Random(int.from_bytes(h[:8], "little"))


def sample_aus(
    table: dict,
    expression: str,
    rng: random.Random,
    blend_prob: float = 0.3,
    max_blend: float = 0.35,
    neutral_jitter: float = 0.08,
) -> tuple[dict[str, float], dict]:
    """Shape-key values for one image: each AU of the expression uniform in its range; with ``blend_prob``,
    a blend of weight <= ``max_blend`` toward a neighbouring expression. Returns (values, info)."""
    aus = table["action_units"]

    def draw(expr: str) -> dict[str, float]:
        return {aus[a]: rng.uniform(lo, hi) for a, (lo, hi) in table["expressions"][expr].items()}

    values = draw(expression)
    info: dict = {"blend": None}
    if expression == "neutral":
        for key in rng.sample(sorted(aus.values()), 2):
            values[key] = rng.uniform(0, neutral_jitter)
    if rng.random() < blend_prob:
        other = rng.choice(table["neighbours"][expression])
        w = rng.uniform(0.1, max_blend)
        o = draw(other)
        values = {k: (1 - w) * values.get(k, 0.0) + w * o.get(k, 0.0) for k in set(values) | set(o)}
        info["blend"] = {"toward": other, "weight": round(w, 4)}
    return {k: round(v, 4) for k, v in sorted(values.items())}, info


def sample_view(rng: random.Random, max_angle: float = 15.0) -> View:
    return View(
        yaw=round(rng.uniform(-max_angle, max_angle), 2),
        pitch=round(rng.uniform(-max_angle, max_angle), 2),
        distance=round(rng.uniform(5.2, 6.6), 3),
        light=round(rng.uniform(-70, 70), 1),
        background=rng.choice(BACKGROUNDS),
    )


__all__ = ["image_rng", "load_expression_table", "sample_aus", "sample_view"]
