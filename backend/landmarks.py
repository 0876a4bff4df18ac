"""Named (semantic) landmark points shared by human faces and stylized characters.

Human faces have dlib's 68 iBUG points; stylized characters carry only a handful of named points
(placed on the mesh in Blender). Everything downstream of detection -- alignment and the geometric
expression features -- works on the named points, so it serves both.

Names use the *image* side: ``l_`` is the point on the left of the image (the subject's right).
Each name is the mean of one or more iBUG 68 indices (0-based).
"""

from __future__ import annotations

import numpy as np

SEMANTIC_POINTS: dict[str, tuple[int, ...]] = {
    "l_brow_outer": (17,),
    "l_brow_mid": (19,),
    "l_brow_inner": (21,),
    "r_brow_inner": (22,),
    "r_brow_mid": (24,),
    "r_brow_outer": (26,),
    "l_eye_outer": (36,),
    "l_eye_top": (37, 38),
    "l_eye_inner": (39,),
    "l_eye_bottom": (40, 41),
    "r_eye_inner": (42,),
    "r_eye_top": (43, 44),
    "r_eye_outer": (45,),
    "r_eye_bottom": (46, 47),
    "nose_bridge": (27,),
    "nose_tip": (30,),
    "mouth_l": (48,),
    "mouth_r": (54,),
    "lip_top": (51,),
    "lip_top_inner": (62,),
    "lip_bottom_inner": (66,),
    "lip_bottom": (57,),
    "chin": (8,),
}
SEMANTIC_NAMES: tuple[str, ...] = tuple(SEMANTIC_POINTS)

# Points that expressions barely move: alignment is estimated from these only, so that an open mouth or
# raised brows do not shift the crop.
ANCHOR_NAMES: tuple[str, ...] = ("l_eye_outer", "l_eye_inner", "r_eye_inner", "r_eye_outer", "nose_bridge", "nose_tip")


assert all(1 <= len(idx) <= 2 for idx in SEMANTIC_POINTS.values())
_FIRST = np.array([idx[0] for idx in SEMANTIC_POINTS.values()])
_SECOND = np.array([idx[-1] for idx in SEMANTIC_POINTS.values()])


def semantic_from_68(points68: np.ndarray) -> np.ndarray:
    """(N_SEMANTIC, 2) array of named points, in SEMANTIC_NAMES order, from a (68, 2) array."""
    pts = np.asarray(points68, dtype=np.float64)
    if pts.shape != (68, 2):
        raise ValueError(f"expected 68x2 landmarks, got {pts.shape}")
    return (pts[_FIRST] + pts[_SECOND]) / 2  # the mean of one or two points, as one gather (bit-identical)


def semantic_from_dict(named: dict[str, tuple[float, float]]) -> np.ndarray:
    """(N_SEMANTIC, 2) array from a {name: (x, y)} mapping; missing names raise KeyError naming them."""
    missing = [n for n in SEMANTIC_NAMES if n not in named]
    if missing:
        raise KeyError(f"missing semantic landmarks: {', '.join(missing)}")
    return np.array([named[n] for n in SEMANTIC_NAMES], dtype=np.float64)


def index_of(name: str) -> int:
    return SEMANTIC_NAMES.index(name)


# iBUG 68 index of each point's mirror image (left <-> right of the face).
MIRROR68: tuple[int, ...] = (
    *range(16, -1, -1),  # jaw
    *range(26, 16, -1),  # brows
    27, 28, 29, 30,  # nose bridge
    35, 34, 33, 32, 31,  # nostrils
    45, 44, 43, 42, 47, 46,  # the right-hand eye, mirrored onto the left
    39, 38, 37, 36, 41, 40,
    54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55,  # outer lip
    64, 63, 62, 61, 60, 67, 66, 65,  # inner lip
)  # fmt: skip
assert sorted(MIRROR68) == list(range(68))
