"""Pictures for people: a face with its box and landmarks."""

from __future__ import annotations

import cv2
import numpy as np

from . import outputs

# iBUG 68 contour groups, drawn as polylines: (start, end, closed)
_GROUPS = (
    (0, 17, False),
    (17, 22, False),
    (22, 27, False),
    (27, 31, False),
    (31, 36, False),
    (36, 42, True),
    (42, 48, True),
    (48, 60, True),
    (60, 68, True),
)


def draw_face(fa, out: str) -> None:
    img = cv2.cvtColor(fa.decoded.rgb, cv2.COLOR_RGB2BGR).copy()
    t = max(1, round(max(img.shape[:2]) / 400))
    l, tp, r, b = fa.face.box
    cv2.rectangle(img, (l, tp), (r, b), (60, 220, 60), t)
    pts = np.round(fa.points68).astype(np.int32)
    for s, e, closed in _GROUPS:
        cv2.polylines(img, [pts[s:e]], closed, (255, 200, 40), t, cv2.LINE_AA)
    for x, y in pts:
        cv2.circle(img, (int(x), int(y)), t + 1, (40, 40, 255), -1, cv2.LINE_AA)
    label = f"faces: {fa.face.faces_found}" + ("  (cut by border)" if fa.truncated else "")
    cv2.putText(img, label, (l, max(12 * t, tp - 4 * t)), cv2.FONT_HERSHEY_SIMPLEX, 0.4 * t, (60, 220, 60), t)
    outputs.write_image(out, img)
