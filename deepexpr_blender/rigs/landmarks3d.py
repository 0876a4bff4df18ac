"""Named face landmarks on a character's mesh, so that library entries carry the points the retrieval's
alignment and geometric term need (the names of ``backend.landmarks.SEMANTIC_NAMES``, listed here because
the add-on does not import the backend; a test checks both lists agree).

Each landmark is a vertex (object, evaluated-mesh index), found in this order:

1. **Given**: ``obj["deepexpr_landmarks"]`` ({name: vertex index}, our toons carry it) or vertex groups named
   ``deepexpr_<name>`` / ``<name>`` (the vertex of largest weight).
2. **Found from the keys' motion** (``core.expression_keys.landmark_roles``), in the face-on view:
   - eyes: on each side, the lowest visible vertex among those the blink moves fast (over half its peak)
     and downwards is the upper lid's edge (``eye_top``); the vertex
     nearest to where it lands is the lower lid's (``eye_bottom``); the blink region's extreme vertices
     across the face, at the eye's height and within three lid openings, are the corners
     (``eye_inner``/``eye_outer``);
   - brows: the brow-raise region (its fastest 40 %, above the eyes and within 1.2 eye distances of the upper
     lids) on each side:
     nearest to the midline (inner), farthest (outer), middle;
   - mouth corners: the smile's fastest visible vertex on each side, away from the midline (a smile that
     also parts the lips moves their middle most);
   - along the midline, the jaw opening separates what stays (upper lip: ``lip_top``/``lip_top_inner`` at its
     lowest point) from what drops (lower lip at its highest point, chin at its lowest visible point);
   - nose tip: the midline vertex nearest the camera between the eyes and the mouth; nose bridge: the
     midline vertex at the eyes' height.
   ``l_``/``r_`` are image sides (the subject's right is the image's left), as in the human landmarks.

``project_landmarks`` evaluates the vertices in the current pose and projects them into the thumbnail.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .character import evaluated_many
from .framing import FaceFrame, FaceRegion, show_pose, to_rest

SEMANTIC_NAMES: tuple[str, ...] = (
    "l_brow_outer", "l_brow_mid", "l_brow_inner", "r_brow_inner", "r_brow_mid", "r_brow_outer",
    "l_eye_outer", "l_eye_top", "l_eye_inner", "l_eye_bottom", "r_eye_inner", "r_eye_top", "r_eye_outer",
    "r_eye_bottom", "nose_bridge", "nose_tip", "mouth_l", "mouth_r", "lip_top", "lip_top_inner",
    "lip_bottom_inner", "lip_bottom", "chin",
)  # fmt: skip


@dataclass
class LandmarkVertices:
    """Semantic name -> (object name, evaluated vertex index); ``method`` says how they were found."""

    vertices: dict[str, tuple[str, int]]
    method: str  # given | motion

    def complete(self) -> bool:
        return all(n in self.vertices for n in SEMANTIC_NAMES)

    def missing(self) -> list[str]:
        return [n for n in SEMANTIC_NAMES if n not in self.vertices]


def given_landmarks(objs: list) -> LandmarkVertices | None:
    """Landmarks the character declares (custom property or vertex groups), or None."""
    found: dict[str, tuple[str, int]] = {}
    for o in objs:
        if o.type != "MESH":
            continue
        prop = o.get("deepexpr_landmarks")
        if prop is not None:
            for name in SEMANTIC_NAMES:
                if name in prop:
                    found[name] = (o.name, int(prop[name]))
        groups = {g.name: g.index for g in o.vertex_groups}
        for name in SEMANTIC_NAMES:
            gi = groups.get(f"deepexpr_{name}", groups.get(name))
            if gi is None or name in found:
                continue
            best, weight = None, 0.0
            for v in o.data.vertices:
                for g in v.groups:
                    if g.group == gi and g.weight > weight:
                        best, weight = v.index, g.weight
            if best is not None:
                found[name] = (o.name, best)
    return LandmarkVertices(found, "given") if found else None


class _View:
    """Every face-region mesh's rest vertices in the thumbnail: pixels, depth, visibility."""

    def __init__(self, region: FaceRegion, frame: FaceFrame):
        self.names = list(region.rest)
        self.obj = np.concatenate([np.full(len(region.rest[n]), i) for i, n in enumerate(self.names)])
        self.idx = np.concatenate([np.arange(len(region.rest[n])) for n in self.names])
        self.rest = np.concatenate([region.rest[n] for n in self.names])
        self.px, self.depth = frame.project(self.rest)
        self.frame = frame
        self.visible = self._visible()

    def _visible(self, cell: float = 2.0) -> np.ndarray:
        """Front-most vertices per ``cell`` x ``cell`` pixel bin (a coarse z-buffer)."""
        s = self.frame.size
        inside = (self.px[:, 0] >= 0) & (self.px[:, 0] < s) & (self.px[:, 1] >= 0) & (self.px[:, 1] < s)
        bins = np.floor(self.px / cell).astype(np.int64)
        key = bins[:, 1] * (s + 10) + bins[:, 0]
        front = np.full(key.max() + 1 if len(key) else 1, np.inf)
        np.minimum.at(front, key[inside], self.depth[inside])
        tol = 0.02 * self.frame.extent
        return inside & (self.depth <= front[np.clip(key, 0, len(front) - 1)] + tol)

    def vertex(self, i: int) -> tuple[str, int]:
        return self.names[int(self.obj[i])], int(self.idx[i])


def _role_motion(objs: list, region: FaceRegion, view: _View, keys) -> np.ndarray:
    """(N, 3) world displacement of every view vertex when the role's keys go to 1 together (``keys``: a list
    of (mesh, key)), or when the character shows a library pose (``keys``: a pose dict, for rigs whose
    expressions are bones)."""
    if isinstance(keys, dict):
        pose = keys
    else:
        pose = {}
        for mesh, key in keys:
            pose.setdefault(mesh, {})[key] = 1.0
    disp = np.zeros_like(view.rest)
    try:
        show_pose(objs, pose)
        posed = evaluated_many(objs, view.names)
        off = 0
        for n in view.names:
            co = posed[n]
            k = len(region.rest[n])
            if co.shape == region.rest[n].shape:
                disp[off : off + k] = co - region.rest[n]
            off += k
    finally:
        to_rest(objs)
    return disp


def motion_landmarks(objs: list, region: FaceRegion, frame: FaceFrame, roles: dict) -> LandmarkVertices:
    """Landmarks found from the role keys' motion (module docstring, step 2); may be incomplete."""
    view = _View(region, frame)
    vis = view.visible
    x, y = view.px[:, 0], view.px[:, 1]
    found: dict[str, tuple[str, int]] = {}
    mid = frame.size / 2.0
    motion = {role: _role_motion(objs, region, view, keys) for role, keys in roles.items() if keys}
    mag = {role: np.linalg.norm(d, axis=1) for role, d in motion.items()}

    def sides(sel: np.ndarray):
        return (("l", sel & (x < mid)), ("r", sel & (x >= mid)))

    eye_y, eye_x, eye_top = [], [], []
    if "eye_close" in mag:
        m = mag["eye_close"]
        for side, sel in sides(vis & (m > 0)):
            if not sel.any():
                continue
            peak = m[sel].max()
            d2 = view.frame.project(view.rest + motion["eye_close"])[0] - view.px
            down = sel & (m >= 0.5 * peak) & (d2[:, 1] > 0.5 * np.linalg.norm(d2, axis=1))
            pool = np.nonzero(down)[0] if down.any() else np.nonzero(sel & (m >= 0.5 * peak))[0]
            top = pool[np.argmax(y[pool])]  # the upper lid's edge: its lowest fast, downward-moving vertex
            landed = view.rest[top] + motion["eye_close"][top]
            still = np.nonzero(vis & (m < 0.3 * peak))[0]
            bottom = still[np.argmin(np.linalg.norm(view.rest[still] - landed, axis=1))] if len(still) else top
            # corners: the blink region's extremes across the face, at the eye's height and within three
            # openings of its centre (a blink key may also drag the cheek or the ears)
            (lx, ly) = frame.project(landed[None])[0][0]
            cy, h = (y[top] + ly) / 2, max(abs(ly - y[top]), 0.03 * frame.size)  # a partial blink moves little
            cand = np.nonzero(sel & (m >= 0.1 * peak) & (np.abs(y - cy) < 0.6 * h) & (np.abs(x - x[top]) < 3 * h))[0]
            if not len(cand):
                cand = np.array([top])
            dx = np.abs(x[cand] - mid)
            inner, outer = cand[np.argmin(dx)], cand[np.argmax(dx)]
            found[f"{side}_eye_top"] = view.vertex(top)
            found[f"{side}_eye_bottom"] = view.vertex(bottom)
            found[f"{side}_eye_inner"] = view.vertex(inner)
            found[f"{side}_eye_outer"] = view.vertex(outer)
            eye_y.append((y[top] + y[bottom]) / 2)
            eye_top.append(min(y[top], y[bottom]))
            eye_x.append((x[inner] + x[outer]) / 2)
    if len(eye_x) == 2:
        mid = float(np.mean(eye_x))
    iod = abs(eye_x[1] - eye_x[0]) if len(eye_x) == 2 else 0.25 * frame.size
    if "brow_raise" in mag:
        m = mag["brow_raise"]
        band = vis & (np.abs(x - mid) < 1.1 * iod)
        if eye_y:  # brows sit above the eyes, within about one eye distance of the upper lids
            band &= (y < min(eye_y)) & (y > min(eye_top) - 1.2 * iod)
        for side, sel in sides(band & (m > 0)):
            if not sel.any():
                continue
            cand = np.nonzero(sel & (m >= 0.6 * m[sel].max()))[0]
            dx = np.abs(x[cand] - mid)
            inner, outer = cand[np.argmin(dx)], cand[np.argmax(dx)]
            centre_x = (x[inner] + x[outer]) / 2
            mid_v = cand[np.argmin(np.abs(x[cand] - centre_x) + 0.25 * np.abs(y[cand] - np.median(y[cand])))]
            found[f"{side}_brow_inner"] = view.vertex(inner)
            found[f"{side}_brow_outer"] = view.vertex(outer)
            found[f"{side}_brow_mid"] = view.vertex(mid_v)
    mouth_w = mouth_y = None
    if "smile" in mag:
        m = mag["smile"]
        corners = {}
        for side, sel in sides(vis & (m > 0)):
            if eye_y:
                sel = sel & (y > max(eye_y))
            off = sel & (np.abs(x - mid) > 0.2 * iod)  # a corner, not the lips' middle a smile also parts
            sel = off if off.any() else sel
            if sel.any():
                c = np.nonzero(sel)[0][np.argmax(m[sel])]
                corners[side] = c
                found[f"mouth_{side}"] = view.vertex(c)
        if len(corners) == 2:
            mouth_w = abs(x[corners["r"]] - x[corners["l"]])
            mouth_y = (y[corners["r"]] + y[corners["l"]]) / 2
    if "jaw_open" in mag:
        m = mag["jaw_open"]
        peak = m[vis].max() if vis.any() else 0.0
        half = 0.15 * (mouth_w if mouth_w else 0.2 * frame.size)
        top_y = max(eye_y) if eye_y else 0.0
        strip = vis & (np.abs(x - mid) < half) & (y > top_y)
        moving = np.nonzero(strip & (m > 0.5 * peak))[0]
        if peak > 0 and len(moving):
            lower_top = moving[np.argmin(y[moving])]
            still = np.nonzero(strip & (m < 0.2 * peak) & (y < y[lower_top]))[0]
            chin = moving[np.argmax(y[moving])]
            found["lip_bottom_inner"] = found["lip_bottom"] = view.vertex(lower_top)
            found["chin"] = view.vertex(chin)
            if len(still):
                upper = still[np.argmax(y[still])]
                found["lip_top_inner"] = found["lip_top"] = view.vertex(upper)
    if eye_y:
        eye_line = float(np.mean(eye_y))
        half = 0.15 * (mouth_w if mouth_w else 0.2 * frame.size)
        strip = vis & (np.abs(x - mid) < half)
        at_eyes = np.nonzero(strip & (np.abs(y - eye_line) < 0.03 * frame.size))[0]
        if len(at_eyes):
            found["nose_bridge"] = view.vertex(at_eyes[np.argmin(view.depth[at_eyes])])
        low = mouth_y if mouth_y is not None else eye_line + 0.35 * frame.size
        between = np.nonzero(strip & (y > eye_line) & (y < low))[0]
        if len(between):
            found["nose_tip"] = view.vertex(between[np.argmin(view.depth[between])])
    return LandmarkVertices(found, "motion")


def find_landmarks(objs: list, region: FaceRegion, frame: FaceFrame, roles: dict) -> LandmarkVertices:
    """Given landmarks when the character declares them all, else those found from the keys' motion."""
    given = given_landmarks(objs)
    if given is not None and given.complete():
        return given
    return motion_landmarks(objs, region, frame, roles)


def project_landmarks(
    objs: list, lm: LandmarkVertices, frame: FaceFrame, posed: dict[str, np.ndarray] | None = None
) -> np.ndarray:
    """(N_SEMANTIC, 2) thumbnail pixels of the landmark vertices in the character's current pose (``posed``:
    the meshes' evaluated vertices in that pose when the caller has them, ``evaluated_many``)."""
    need = [lm.vertices[name][0] for name in SEMANTIC_NAMES]
    if posed is None or any(n not in posed for n in need):
        posed = evaluated_many(objs, need)
    pts = [posed[obj_name][i] for obj_name, i in (lm.vertices[name] for name in SEMANTIC_NAMES)]
    px, _ = frame.project(np.array(pts))
    return px
