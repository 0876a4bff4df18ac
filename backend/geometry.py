"""DeepExpr's geometric term: a small vector of scale- and rotation-invariant measurements of an expression.

Computed from the named points (``backend.landmarks``), so it exists for human faces (dlib) and stylized
characters (points projected from the mesh) alike. Points are first expressed in a face frame: origin at
the midpoint between the eye centres, x along the eye line, y pointing down the face, unit = inter-ocular
distance (IOD, between eye centres). Every feature is therefore invariant to image scale, in-plane rotation
and translation. Sign convention: larger = "more raised / more open / wider".
"""

from __future__ import annotations

import numpy as np

from .landmarks import SEMANTIC_NAMES

FEATURE_NAMES: tuple[str, ...] = (
    "inner_brow_height",  # eye-line to inner brow points, mean of both sides (AU1 up, AU4 down)
    "outer_brow_height",  # eye-line to outer brow points (AU2)
    "brow_gap",  # distance between the inner brow points (AU4 draws them together)
    "eye_openness",  # lid opening / eye width, mean of both eyes (AU5 up, AU7 / AU6 down)
    "mouth_width",  # corner to corner (AU12 / AU20 widen)
    "mouth_opening",  # inner lip gap (AU25 / AU26)
    "mouth_corner_lift",  # corners above the mid-lip line (AU12 up, AU15 down)
    "upper_lip_raise",  # nose tip to upper lip, negated (AU10 raises the lip towards the nose)
    "jaw_drop",  # nose tip to chin (AU26 / AU27)
)

_I = {n: i for i, n in enumerate(SEMANTIC_NAMES)}


def face_frame(semantic: np.ndarray) -> np.ndarray:
    """Named points in the face frame described in the module docstring."""
    p = np.asarray(semantic, dtype=np.float64)
    le = (p[_I["l_eye_outer"]] + p[_I["l_eye_inner"]]) / 2
    re = (p[_I["r_eye_outer"]] + p[_I["r_eye_inner"]]) / 2
    axis = re - le
    iod = float(np.hypot(*axis))
    if iod < 1e-6:
        raise ValueError("degenerate landmarks: the eyes coincide")
    ex = axis / iod
    ey = np.array([-ex[1], ex[0]])  # image y grows downwards, so this points down the face
    centred = p - (le + re) / 2
    return np.stack([centred @ ex, centred @ ey], axis=1) / iod


def geometric_features(semantic: np.ndarray) -> np.ndarray:
    """The FEATURE_NAMES vector (float32) for one face's named points."""
    q = face_frame(semantic)

    def pt(name: str) -> np.ndarray:
        return q[_I[name]]

    def up(name: str) -> float:  # height above the eye line
        return -pt(name)[1]

    eye_open = []
    for side in ("l", "r"):
        width = np.linalg.norm(pt(f"{side}_eye_outer") - pt(f"{side}_eye_inner"))
        eye_open.append(np.linalg.norm(pt(f"{side}_eye_top") - pt(f"{side}_eye_bottom")) / max(width, 1e-6))
    mid_lip_y = (pt("lip_top")[1] + pt("lip_bottom")[1]) / 2
    corners_y = (pt("mouth_l")[1] + pt("mouth_r")[1]) / 2
    feats = [
        (up("l_brow_inner") + up("r_brow_inner")) / 2,
        (up("l_brow_outer") + up("r_brow_outer")) / 2,
        float(np.linalg.norm(pt("l_brow_inner") - pt("r_brow_inner"))),
        float(np.mean(eye_open)),
        float(np.linalg.norm(pt("mouth_l") - pt("mouth_r"))),
        float(np.linalg.norm(pt("lip_top_inner") - pt("lip_bottom_inner"))),
        mid_lip_y - corners_y,
        -float(np.linalg.norm(pt("lip_top") - pt("nose_tip"))),
        float(np.linalg.norm(pt("chin") - pt("nose_tip"))),
    ]
    return np.asarray(feats, dtype=np.float32)
