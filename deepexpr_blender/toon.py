"""Procedural toon characters in Blender: one mesh per character, FACS-style shape keys, semantic landmarks.

Runs in real Blender (``bpy``, e.g. ``pip install bpy==5.0.1``) and imports only what Blender bundles, so the
add-on can add these characters to a scene and training can render them. A character is built from a ``CharacterSpec``
into ONE mesh object whose parts (head, eyes, lids, brows, nose, mouth, cheeks, ears, hair, glasses) are
tracked by vertex index, so each action unit is a single shape key: a displacement field computed with
numpy from the parts' rest positions. Named landmark vertices (``backend.landmarks.SEMANTIC_NAMES``) are
recorded on the object and projected to 2D at render time, so the engine's geometric features can be
computed for characters as for humans.

Axes: the face looks down -Y (towards the camera), Z is up, +X is the image's right.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

AU_SHAPE_KEYS = (
    "inner_brow_raise",
    "outer_brow_raise",
    "brow_lower",
    "upper_lid_raise",
    "lid_tighten",
    "cheek_raise",
    "nose_wrinkle",
    "upper_lip_raise",
    "lip_corner_pull",
    "lip_corner_depress",
    "lip_stretch",
    "lips_part",
    "jaw_drop",
)


@dataclass
class CharacterSpec:
    name: str
    head: tuple[float, float, float] = (1.0, 0.95, 1.0)  # ellipsoid radii (x, y, z)
    jaw: float = 0.0  # >0 widens the lower face (pear), <0 narrows it (heart)
    skin: tuple[float, float, float] = (0.98, 0.78, 0.62)
    iris: tuple[float, float, float] = (0.25, 0.45, 0.85)
    hair: tuple[float, float, float] = (0.35, 0.2, 0.1)
    brow: tuple[float, float, float] = (0.25, 0.15, 0.08)
    shirt: tuple[float, float, float] = (0.3, 0.5, 0.8)
    eye_size: float = 0.27  # sclera radius
    eye_gap: float = 0.36  # eye centre distance from the midline
    eye_height: float = 0.08
    nose: str = "button"  # button | long | snout
    ears: str = "round"  # round | pointy | none | floppy
    hairdo: str = "tuft"  # tuft | cap | spikes | bun
    glasses: bool = False
    mouth_width: float = 0.34
    extras: dict = field(default_factory=dict)


CHARACTERS: tuple[CharacterSpec, ...] = (
    CharacterSpec(
        "pip",
        head=(1.0, 0.95, 0.92),
        jaw=0.15,
        skin=(0.99, 0.8, 0.64),
        iris=(0.2, 0.5, 0.9),
        hair=(0.9, 0.55, 0.15),
        brow=(0.75, 0.4, 0.1),
        shirt=(0.95, 0.35, 0.3),
        ears="round",
        hairdo="tuft",
        nose="button",
    ),
    CharacterSpec(
        "mira",
        head=(0.9, 0.9, 1.08),
        jaw=-0.2,
        skin=(0.75, 0.52, 0.38),
        iris=(0.35, 0.2, 0.1),
        hair=(0.12, 0.08, 0.1),
        brow=(0.1, 0.07, 0.07),
        shirt=(0.55, 0.3, 0.75),
        eye_size=0.25,
        eye_gap=0.33,
        ears="none",
        hairdo="bun",
        nose="long",
        glasses=True,
    ),
    CharacterSpec(
        "bruno",
        head=(1.12, 0.95, 0.9),
        jaw=0.35,
        skin=(0.86, 0.66, 0.5),
        iris=(0.3, 0.55, 0.25),
        hair=(0.45, 0.45, 0.5),
        brow=(0.3, 0.3, 0.33),
        shirt=(0.25, 0.6, 0.4),
        eye_size=0.22,
        eye_gap=0.4,
        eye_height=0.12,
        ears="floppy",
        hairdo="cap",
        nose="snout",
        mouth_width=0.42,
    ),
    CharacterSpec(
        "zee",
        head=(0.95, 0.9, 0.98),
        jaw=-0.05,
        skin=(0.7, 0.88, 0.6),
        iris=(0.85, 0.2, 0.55),
        hair=(0.2, 0.6, 0.55),
        brow=(0.1, 0.35, 0.3),
        shirt=(0.95, 0.8, 0.25),
        eye_size=0.3,
        eye_gap=0.35,
        ears="pointy",
        hairdo="spikes",
        nose="button",
        mouth_width=0.3,
    ),
)

MATERIALS = ("skin", "sclera", "iris", "pupil", "brow", "mouth", "blush", "hair", "nose", "shirt", "glasses", "teeth")


def _srgb_to_linear(c) -> tuple[float, float, float]:
    c = np.asarray(c, dtype=float)
    return tuple(np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4))


def _mat_colors(spec: CharacterSpec) -> dict[str, tuple[float, float, float]]:
    """Material colours in linear space (Blender's), from the sRGB colours of the spec."""
    return {k: _srgb_to_linear(v) for k, v in _srgb_colors(spec).items()}


def _srgb_colors(spec: CharacterSpec) -> dict[str, tuple[float, float, float]]:
    skin = np.array(spec.skin)
    return {
        "skin": spec.skin,
        "sclera": (0.97, 0.97, 0.97),
        "iris": spec.iris,
        "pupil": (0.03, 0.03, 0.05),
        "brow": spec.brow,
        "mouth": (0.35, 0.05, 0.08),
        "blush": tuple(np.clip(skin * [1.0, 0.72, 0.75] + [0.05, 0, 0], 0, 1)),
        "hair": spec.hair,
        "nose": tuple(np.clip(skin * 0.9, 0, 1)),
        "shirt": spec.shirt,
        "glasses": (0.1, 0.1, 0.12),
        "teeth": (0.98, 0.98, 0.95),
    }


class _Builder:
    """Accumulates parts into one bmesh. Each vertex carries its part's id in an int layer (BMesh reuses freed
    slots after deletions, so index ranges would not survive them)."""

    def __init__(self):
        import bmesh

        self.bm = bmesh.new()
        self.layer = self.bm.verts.layers.int.new("part")
        self.part_ids: dict[str, int] = {}

    def _pid(self, name: str) -> int:
        return self.part_ids.setdefault(name, len(self.part_ids) + 1)

    def add(self, name: str, kind: str, material: str, transform, **kw) -> None:
        """Add a primitive; ``transform`` maps its (N,3) local coords to object space."""
        import bmesh

        if kind == "sphere":
            verts = bmesh.ops.create_uvsphere(
                self.bm, u_segments=kw.get("u", 24), v_segments=kw.get("v", 16), radius=1.0
            )["verts"]
        elif kind in ("cone", "cylinder"):
            verts = bmesh.ops.create_cone(
                self.bm,
                cap_ends=True,
                segments=kw.get("u", 16),
                radius1=1.0,
                radius2=0.0 if kind == "cone" else 1.0,
                depth=1.0,
            )["verts"]
        elif kind == "torus":
            verts = self._torus(kw.get("major", 1.0), kw.get("minor", 0.08))
        else:
            raise ValueError(kind)
        co = transform(np.array([v.co[:] for v in verts]))
        pid, mat = self._pid(name), MATERIALS.index(material)
        vset = set(verts)
        for v, c in zip(verts, co):
            v.co = c
            v[self.layer] = pid
        for f in {f for v in verts for f in v.link_faces}:
            if all(u in vset for u in f.verts):
                f.material_index = mat

    def _torus(self, major: float, minor: float, nu: int = 32, nv: int = 8) -> list:
        verts = []
        for i in range(nu):
            a = 2 * math.pi * i / nu
            for j in range(nv):
                b = 2 * math.pi * j / nv
                r = major + minor * math.cos(b)
                verts.append(self.bm.verts.new((r * math.cos(a), r * math.sin(a), minor * math.sin(b))))
        for i in range(nu):
            for j in range(nv):
                a, b = i * nv + j, ((i + 1) % nu) * nv + j
                c, d = ((i + 1) % nu) * nv + (j + 1) % nv, i * nv + (j + 1) % nv
                self.bm.faces.new((verts[a], verts[b], verts[c], verts[d]))
        return verts

    def delete_verts(self, name: str, mask_fn) -> None:
        """Delete the part's vertices where ``mask_fn(coords)`` is True (e.g. cut a sphere into a lid cap)."""
        import bmesh

        pid = self.part_ids[name]
        verts = [v for v in self.bm.verts if v[self.layer] == pid]
        mask = mask_fn(np.array([v.co[:] for v in verts]))
        bmesh.ops.delete(self.bm, geom=[v for v, k in zip(verts, mask) if k], context="VERTS")

    def parts(self) -> dict[str, np.ndarray]:
        """Part name -> vertex indices, valid for the mesh written by ``bm.to_mesh`` right after."""
        self.bm.verts.index_update()
        by_id: dict[int, list[int]] = {}
        for v in self.bm.verts:
            by_id.setdefault(v[self.layer], []).append(v.index)
        return {name: np.array(by_id.get(pid, []), dtype=np.int64) for name, pid in self.part_ids.items()}


def _scale_translate(s, t):
    s, t = np.asarray(s, float), np.asarray(t, float)
    return lambda co: co * s + t


def _head_surface_y(spec: CharacterSpec, x: float, z: float) -> float:
    hx, hy, hz = spec.head
    r = 1 - (x / hx) ** 2 - (z / hz) ** 2
    return -hy * math.sqrt(max(r, 0.0))


def build_character(spec: CharacterSpec, collection=None):
    """Create the character's mesh object (with shape keys and landmark indices) in the current scene."""
    import bpy

    b = _Builder()
    hx, hy, hz = spec.head

    def head_tf(co):
        co = co * [hx, hy, hz]
        low = np.clip(-co[:, 2] / hz, 0, 1)
        co[:, 0] *= 1 + spec.jaw * low**1.5
        return co

    b.add("head", "sphere", "skin", head_tf, u=48, v=32)
    # body: neck and shoulders in the shirt colour
    b.add("body", "sphere", "shirt", _scale_translate((1.1, 0.75, 0.55), (0, 0.15, -1.45)), u=32, v=16)
    b.add("neck", "cylinder", "skin", _scale_translate((0.3, 0.3, 0.5), (0, 0.1, -1.0)))

    er, eg, eh = spec.eye_size, spec.eye_gap, spec.eye_height
    eye_centres = {}
    for side, s in (("l", -1), ("r", 1)):
        ex = s * eg
        ey = _head_surface_y(spec, ex, eh) + er * 0.45
        c = np.array([ex, ey, eh])
        eye_centres[side] = c
        b.add(f"{side}_sclera", "sphere", "sclera", _scale_translate((er, er * 0.6, er * 1.1), c))
        b.add(
            f"{side}_iris",
            "sphere",
            "iris",
            _scale_translate((er * 0.5, er * 0.2, er * 0.58), c + [0, -er * 0.5, -er * 0.05]),
        )
        b.add(
            f"{side}_pupil",
            "sphere",
            "pupil",
            _scale_translate((er * 0.25, er * 0.1, er * 0.3), c + [0, -er * 0.62, -er * 0.05]),
        )
        b.add(
            f"{side}_glint",
            "sphere",
            "sclera",
            _scale_translate((er * 0.09, er * 0.05, er * 0.09), c + [s * -0.06, -er * 0.7, er * 0.12]),
        )
        # Lids: skin caps over the eyeball, cut at the lid line; they rotate about the eye's x axis.
        b.add(f"{side}_upper_lid", "sphere", "skin", _scale_translate((er * 1.08, er * 0.68, er * 1.16), c), u=24, v=24)
        b.delete_verts(f"{side}_upper_lid", lambda co, c=c: co[:, 2] < c[2] + er * 0.45)
        b.add(f"{side}_lower_lid", "sphere", "skin", _scale_translate((er * 1.06, er * 0.66, er * 1.14), c), u=24, v=24)
        b.delete_verts(f"{side}_lower_lid", lambda co, c=c: co[:, 2] > c[2] - er * 0.8)
        # Brow: a flattened, slightly arched capsule above the eye.
        bz = eh + er * 1.1 + 0.1

        def brow_tf(co, s=s, ex=ex, bz=bz):
            co = co * [er * 0.95, 0.05, 0.055]
            co[:, 2] += 0.05 * (1 - (co[:, 0] / (er * 0.95)) ** 2)  # arch
            co[:, 0] += ex
            co[:, 2] += bz
            co[:, 1] += np.array([_head_surface_y(spec, x, bz) for x in co[:, 0]]) - 0.01
            return co

        b.add(f"{side}_brow", "sphere", "brow", brow_tf, u=24, v=8)
        # Cheek blush
        cx, cz = s * (eg + 0.12), eh - er - 0.2
        b.add(
            f"{side}_cheek",
            "sphere",
            "blush",
            _scale_translate((0.14, 0.03, 0.09), (cx, _head_surface_y(spec, cx, cz) + 0.01, cz)),
        )
    # Nose
    nz = eh - spec.eye_size - 0.02
    ny = _head_surface_y(spec, 0, nz)
    if spec.nose == "button":
        b.add("nose", "sphere", "nose", _scale_translate((0.1, 0.09, 0.08), (0, ny - 0.03, nz)))
    elif spec.nose == "long":
        b.add("nose", "sphere", "nose", _scale_translate((0.07, 0.16, 0.13), (0, ny - 0.07, nz + 0.02)))
    else:  # snout: a big soft nose with a dark tip
        b.add("nose", "sphere", "nose", _scale_translate((0.2, 0.14, 0.13), (0, ny - 0.04, nz)))
        b.add("nose_tip", "sphere", "pupil", _scale_translate((0.08, 0.05, 0.05), (0, ny - 0.17, nz + 0.04)))
    # Mouth: a dark ellipsoid in the face; closed it is a line, its vertices carry the mouth AUs.
    mz = nz - 0.32
    my = _head_surface_y(spec, 0, mz)
    mw = spec.mouth_width
    b.add("mouth", "sphere", "mouth", _scale_translate((mw, 0.06, 0.025), (0, my + 0.02, mz)), u=32, v=12)
    b.add("teeth", "sphere", "teeth", _scale_translate((mw * 0.7, 0.04, 0.012), (0, my + 0.035, mz + 0.005)), u=24, v=8)
    # Ears
    for s in (-1, 1):
        if spec.ears == "round":
            b.add(f"ear{s}", "sphere", "skin", _scale_translate((0.12, 0.22, 0.22), (s * hx * 0.98, 0.05, 0.1)))
        elif spec.ears == "pointy":

            def ear_tf(co, s=s):
                co = co * [0.22, 0.08, 0.55]
                ang = s * -0.5
                x, z = co[:, 0].copy(), co[:, 2].copy()
                co[:, 0], co[:, 2] = x * math.cos(ang) - z * math.sin(ang), x * math.sin(ang) + z * math.cos(ang)
                return co + [s * hx * 0.72, 0.1, hz * 0.75]

            b.add(f"ear{s}", "cone", "skin", ear_tf)
        elif spec.ears == "floppy":
            b.add(f"ear{s}", "sphere", "hair", _scale_translate((0.16, 0.12, 0.42), (s * hx * 1.02, 0.1, -0.15)))
    # Hair
    if spec.hairdo == "tuft":
        for k, (dx, h) in enumerate(((-0.12, 0.35), (0.0, 0.45), (0.13, 0.32))):

            def tuft_tf(co, dx=dx, h=h, k=k):
                co = co * [0.1, 0.1, h]
                ang = (k - 1) * -0.35
                x, z = co[:, 0].copy(), co[:, 2].copy()
                co[:, 0], co[:, 2] = x * math.cos(ang) - z * math.sin(ang), x * math.sin(ang) + z * math.cos(ang)
                return co + [dx, -0.05, hz * 0.97 + h * 0.35]

            b.add("hair", "cone", "hair", tuft_tf)
    elif spec.hairdo == "cap":
        b.add(
            "hair", "sphere", "hair", _scale_translate((hx * 1.04, hy * 1.04, hz * 1.04), (0, 0.02, 0.03)), u=48, v=32
        )
        b.delete_verts(
            "hair", lambda co: co[:, 2] < 0.42 + 0.5 * np.clip(-co[:, 1], 0, None) ** 2 * 0 + (co[:, 1] < -0.3) * 0.25
        )
    elif spec.hairdo == "spikes":
        for k in range(5):
            ang = (k - 2) * 0.42

            def spike_tf(co, ang=ang):
                co = co * [0.13, 0.13, 0.5]
                x, z = co[:, 0].copy(), co[:, 2].copy()
                co[:, 0], co[:, 2] = x * math.cos(ang) - z * math.sin(ang), x * math.sin(ang) + z * math.cos(ang)
                return co + [math.sin(ang) * hz * 0.95, 0.1, math.cos(ang) * hz * 0.95]

            b.add("hair", "cone", "hair", spike_tf)
    elif spec.hairdo == "bun":
        b.add(
            "hair", "sphere", "hair", _scale_translate((hx * 1.04, hy * 1.05, hz * 1.03), (0, 0.03, 0.02)), u=48, v=32
        )
        b.delete_verts("hair", lambda co: (co[:, 2] < 0.35) | ((co[:, 1] < -0.2) & (co[:, 2] < 0.62)))
        b.add("hair", "sphere", "hair", _scale_translate((0.32, 0.32, 0.3), (0, 0.25, hz * 1.05)))
    if spec.glasses:
        for side in ("l", "r"):
            c = eye_centres[side]

            def rim_tf(co, c=c):
                co = co * [1, 1, 1]
                co = co[:, [0, 2, 1]]  # torus in the XZ plane, facing the camera
                return co * [er * 1.25, 1, er * 1.3] + c + [0, -er * 0.75, 0]

            b.add("glasses", "torus", "glasses", rim_tf, major=1.0, minor=0.05)
        b.add(
            "glasses",
            "cylinder",
            "glasses",
            lambda co: (
                co[:, [2, 1, 0]] * [0.5 * (2 * eg - 2.5 * er), 0.025, 0.025]
                + [0, eye_centres["l"][1] - er * 0.75, eh + 0.05]
            ),
        )

    parts = b.parts()
    mesh = bpy.data.meshes.new(spec.name)
    b.bm.to_mesh(mesh)
    b.bm.free()
    obj = bpy.data.objects.new(spec.name, mesh)
    (collection or bpy.context.scene.collection).objects.link(obj)
    colors = _mat_colors(spec)
    for mname in MATERIALS:
        mat = bpy.data.materials.get(f"{spec.name}_{mname}") or bpy.data.materials.new(f"{spec.name}_{mname}")
        mat.diffuse_color = (*colors[mname], 1.0)
        mat.roughness = 0.6
        mesh.materials.append(mat)
    for poly in mesh.polygons:
        poly.use_smooth = True
    base = _coords(mesh)
    obj.shape_key_add(name="Basis", from_mix=False)
    for au in AU_SHAPE_KEYS:
        key = obj.shape_key_add(name=au, from_mix=False)
        key.slider_max = 1.0
        co = base + _au_displacement(au, base, parts, spec, eye_centres)
        key.data.foreach_set("co", co.astype(np.float32).ravel())
    obj["deepexpr_landmarks"] = {k: int(v) for k, v in _landmark_vertices(base, parts, eye_centres).items()}
    obj["deepexpr_character"] = spec.name
    return obj


def _coords(mesh) -> np.ndarray:
    co = np.empty(len(mesh.vertices) * 3, dtype=np.float32)
    mesh.vertices.foreach_get("co", co)
    return co.reshape(-1, 3).astype(np.float64)


def _rot_x(co: np.ndarray, centre: np.ndarray, angle: float) -> np.ndarray:
    """Rotate points about the x axis through ``centre``; positive angle lifts the front (-Y) upwards."""
    p = co - centre
    c, s = math.cos(angle), math.sin(angle)
    y, z = p[:, 1].copy(), p[:, 2].copy()
    p[:, 1], p[:, 2] = y * c + z * s, -y * s + z * c
    return p + centre


def _au_displacement(au: str, base: np.ndarray, parts: dict, spec: CharacterSpec, eyes: dict) -> np.ndarray:
    d = np.zeros_like(base)
    er, mw = spec.eye_size, spec.mouth_width

    def each_side():
        for side, s in (("l", -1), ("r", 1)):
            yield side, s, eyes[side]

    def brow(side, s):
        idx = parts[f"{side}_brow"]
        x = base[idx, 0]
        t = np.clip((s * x - (spec.eye_gap - er)) / (2 * er), 0, 1)  # 0 at the inner end, 1 at the outer end
        return idx, t

    if au == "inner_brow_raise":
        for side, s, _ in each_side():
            idx, t = brow(side, s)
            d[idx, 2] += 0.16 * (1 - t) ** 1.3
    elif au == "outer_brow_raise":
        for side, s, _ in each_side():
            idx, t = brow(side, s)
            d[idx, 2] += 0.14 * t**1.3
    elif au == "brow_lower":
        for side, s, c in each_side():
            idx, t = brow(side, s)
            d[idx, 2] -= 0.06 + 0.1 * (1 - t)
            d[idx, 0] -= s * 0.05 * (1 - t)
            up = parts[f"{side}_upper_lid"]
            d[up] += _rot_x(base[up], c, -0.25) - base[up]
    elif au == "upper_lid_raise":
        for side, s, c in each_side():
            up = parts[f"{side}_upper_lid"]
            d[up] += _rot_x(base[up], c, 0.55) - base[up]
            idx, t = brow(side, s)
            d[idx, 2] += 0.03
    elif au == "lid_tighten":
        for side, _, c in each_side():
            up, lo = parts[f"{side}_upper_lid"], parts[f"{side}_lower_lid"]
            d[up] += _rot_x(base[up], c, -0.45) - base[up]
            d[lo] += _rot_x(base[lo], c, -0.5) - base[lo]
    elif au == "cheek_raise":
        for side, s, c in each_side():
            lo = parts[f"{side}_lower_lid"]
            d[lo] += _rot_x(base[lo], c, -0.55) - base[lo]
            ch = parts[f"{side}_cheek"]
            d[ch, 2] += 0.08
            d[ch, 0] += s * 0.02
    elif au == "nose_wrinkle":
        for key in ("nose", "nose_tip"):
            if key in parts:
                d[parts[key], 2] += 0.05
                d[parts[key], 0] *= 0  # keep x
                d[parts[key], 0] += base[parts[key], 0] * 0.15
        for side, s, c in each_side():
            idx, t = brow(side, s)
            d[idx, 2] -= 0.06 * (1 - t)
            lo = parts[f"{side}_lower_lid"]
            d[lo] += _rot_x(base[lo], c, -0.3) - base[lo]
        idx = parts["mouth"]
        top = base[idx, 2] > base[idx, 2].mean()
        d[idx[top], 2] += 0.05
    elif au in ("upper_lip_raise", "lip_corner_pull", "lip_corner_depress", "lip_stretch", "lips_part", "jaw_drop"):
        idx = np.concatenate([parts["mouth"], parts["teeth"]])
        m = base[parts["mouth"]]
        cz = m[:, 2].mean()
        p = base[idx]
        u = np.clip(p[:, 0] / mw, -1.2, 1.2)  # -1..1 across the mouth
        above = p[:, 2] >= cz
        is_teeth = np.isin(idx, parts["teeth"])
        if au == "lips_part":
            d[idx, 2] += (p[:, 2] - cz) * 4.0 * (1 - u**2) ** 0.3
            d[idx, 1] += 0.02
        elif au == "jaw_drop":
            d[idx, 2] += (p[:, 2] - cz) * 8.0 - 0.08
            d[idx[is_teeth], 2] += 0.06
            head = parts["head"]
            h = base[head]
            w = np.clip((cz + 0.05 - h[:, 2]) / 0.5, 0, 1) * (h[:, 1] < 0.2)
            d[head, 2] -= 0.22 * w
        elif au == "lip_corner_pull":
            d[idx, 2] += 0.14 * u**2 - 0.02
            d[idx, 0] += p[:, 0] * 0.18
            d[idx[~above], 2] -= 0.04 * (1 - u[~above] ** 2)  # a smile deepens in the middle
        elif au == "lip_corner_depress":
            d[idx, 2] -= 0.12 * u**2
            d[idx, 2] += 0.02
        elif au == "lip_stretch":
            d[idx, 0] += p[:, 0] * 0.32
            d[idx, 2] += (p[:, 2] - cz) * 1.5
        elif au == "upper_lip_raise":
            d[idx[above], 2] += 0.07 * (1 - 0.5 * u[above] ** 2)
            d[idx, 0] += p[:, 0] * 0.05
    else:
        raise ValueError(au)
    return d


def _landmark_vertices(base: np.ndarray, parts: dict, eyes: dict) -> dict[str, int]:
    """Vertex index for each semantic landmark name (backend.landmarks.SEMANTIC_NAMES)."""
    out: dict[str, int] = {}

    def pick(part: str, score: np.ndarray) -> int:
        idx = parts[part]
        return int(idx[int(np.argmax(score))])

    for side, s in (("l", -1), ("r", 1)):
        br = base[parts[f"{side}_brow"]]
        front = -br[:, 1] * 5
        out[f"{side}_brow_inner"] = pick(f"{side}_brow", -s * br[:, 0] + front * 0.01 + br[:, 2] * 0.01)
        out[f"{side}_brow_outer"] = pick(f"{side}_brow", s * br[:, 0] + front * 0.01 + br[:, 2] * 0.01)
        mid_x = br[:, 0].mean()
        out[f"{side}_brow_mid"] = pick(f"{side}_brow", -np.abs(br[:, 0] - mid_x) * 10 + br[:, 2] + front * 0.01)
        sc = base[parts[f"{side}_sclera"]]
        c = eyes[side]
        level = -np.abs(sc[:, 2] - c[2]) * 3
        out[f"{side}_eye_outer"] = pick(f"{side}_sclera", s * sc[:, 0] + level)
        out[f"{side}_eye_inner"] = pick(f"{side}_sclera", -s * sc[:, 0] + level)
        up = base[parts[f"{side}_upper_lid"]]
        out[f"{side}_eye_top"] = pick(f"{side}_upper_lid", -up[:, 2] * 4 - np.abs(up[:, 0] - c[0]) * 4 - up[:, 1])
        lo = base[parts[f"{side}_lower_lid"]]
        out[f"{side}_eye_bottom"] = pick(f"{side}_lower_lid", lo[:, 2] * 4 - np.abs(lo[:, 0] - c[0]) * 4 - lo[:, 1])
    nose_part = "nose_tip" if "nose_tip" in parts else "nose"
    out["nose_tip"] = pick(nose_part, -base[parts[nose_part], 1])
    head = base[parts["head"]]
    eye_z = (eyes["l"][2] + eyes["r"][2]) / 2
    out["nose_bridge"] = pick("head", -np.abs(head[:, 0]) * 5 - np.abs(head[:, 2] - eye_z) * 5 - head[:, 1])
    m = base[parts["mouth"]]
    mid = -np.abs(m[:, 0]) * 10
    out["mouth_l"] = pick("mouth", -m[:, 0])
    out["mouth_r"] = pick("mouth", m[:, 0])
    out["lip_top"] = pick("mouth", m[:, 2] + mid - m[:, 1] * 0.1)
    out["lip_top_inner"] = out["lip_top"]
    out["lip_bottom"] = pick("mouth", -m[:, 2] + mid - m[:, 1] * 0.1)
    out["lip_bottom_inner"] = out["lip_bottom"]
    mouth_z = m[:, 2].mean()
    front_low = (head[:, 1] < -0.3) & (head[:, 2] < mouth_z)
    score = np.where(front_low, -head[:, 2] - np.abs(head[:, 0]) * 10, -1e9)
    out["chin"] = pick("head", score)
    return out
