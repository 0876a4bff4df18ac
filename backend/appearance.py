"""Expression appearance from data: what each expression does to the face's shading, beyond moving points.

An *expression ratio image* (Liu, Shan and Zhang 2001) per expression, learned from CK+ same-subject pairs
(``python -m training.make_expression_appearance``): the mean over training pairs of
``log((peak + 16) / (warped neutral + 16))`` on the 64x64 gray crops, each pair's map first brought from its
peak's landmarks onto the expression's mean shape (``(template + delta) * 64``). Identity and lighting
cancel in the ratio; what is left is the expression's own shading: nasolabial folds and raised cheeks of joy,
the brow furrow of anger, the wrinkled nose of disgust, the dark open mouth of surprise and fear.

For a target, the landmark displacement (template space) is explained as a non-negative mix of the six
expression deltas (``backend/assets/expression_deltas.json``); the ratio images, warped from their mean
shapes to the target's landmarks in the source's crop, are mixed with the same weights and applied
multiplicatively to the frame's luminance (all colour channels alike) through a soft face mask. A named
expression at intensity k gets weight ~k; another face's or a key-frame file's landmarks get their own mix.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

import numpy as np

from .align import template68
from .warp import RemapWarper

APPEARANCE_PATH = os.path.join(os.path.dirname(__file__), "assets", "expression_appearance.npz")
SIZE = 64


@dataclass
class AppearanceModel:
    expressions: tuple[str, ...]
    log_ratio: np.ndarray  # (E, 64, 64) float32, each on its mean shape
    shapes: np.ndarray  # (E, 68, 2) mean target shape in 64 px crop coordinates
    deltas: np.ndarray  # (E, 68, 2) template-space landmark deltas (the basis for the mix)
    peak_scale: np.ndarray | None = None  # (E,) a strong peak's extent along each mean delta (1 = the mean)
    max_weight: float = 1.5  # the most any expression's ratio image is applied (times its mean)

    def __post_init__(self):
        self._warpers = [RemapWarper(r.astype(np.float32), s) for r, s in zip(self.log_ratio, self.shapes)]
        self._basis = self.deltas.reshape(len(self.expressions), -1).T  # (136, E)

    def weights(self, src_template: np.ndarray, tgt_template: np.ndarray) -> np.ndarray:
        """Non-negative mix (E,) of the expression deltas closest to ``tgt - src`` (template space)."""
        from scipy.optimize import nnls

        w, _ = nnls(self._basis, (tgt_template - src_template).ravel())
        return np.clip(w, 0.0, self.max_weight)

    def ratio(self, crop_pts: np.ndarray, w: np.ndarray) -> np.ndarray:
        """(64, 64) log-ratio for a target with crop landmarks ``crop_pts`` and mix ``w``."""
        out = np.zeros((SIZE, SIZE), np.float32)
        for k, wk in enumerate(w):
            if wk > 0.02:
                out += float(wk) * self._warpers[k].warp(crop_pts)
        return out


def from_arrays(z) -> AppearanceModel:
    exprs = tuple(str(e) for e in z["expressions"])
    return AppearanceModel(
        expressions=exprs,
        log_ratio=np.asarray(z["log_ratio"], np.float32),
        shapes=np.asarray(z["shapes"], np.float64),
        deltas=np.asarray(z["deltas"], np.float64),
        peak_scale=np.asarray(z["peak_scale"], np.float64) if "peak_scale" in z.files else None,
    )


@functools.lru_cache(maxsize=2)
def load_appearance(path: str = APPEARANCE_PATH) -> AppearanceModel | None:
    """The shipped appearance model, or None when the asset is missing."""
    if not os.path.exists(path):
        return None
    with np.load(path) as z:
        return from_arrays(z)


def peak_scale(expression: str) -> float:
    """How far intensity 1 of a named expression goes along its mean CK+ delta: a strong peak (the 90th
    percentile of CK+ peaks' extent along the mean), not the mean itself, which averaging across subjects
    makes weaker than a typical posed peak. 1.0 without the asset."""
    m = load_appearance()
    if m is None or m.peak_scale is None or expression not in m.expressions:
        return 1.0
    return float(m.peak_scale[m.expressions.index(expression)])


def mean_shapes(deltas: np.ndarray) -> np.ndarray:
    """(E, 68, 2) mean target shapes in 64 px crop coordinates for template-space ``deltas`` (E, 68, 2)."""
    return (template68()[None] + deltas) * SIZE
