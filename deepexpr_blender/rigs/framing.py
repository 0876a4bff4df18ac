"""Face-on thumbnails of a character, whatever its forward axis, in a temporary scene.

- **Face region** (``face_region``): the vertices that move when any of the library's poses is applied,
  measured on the evaluated meshes (shape keys, armature and modifiers applied), over every mesh of the
  character.
- **View** (``frame_face``): an orthographic camera looking at the region along its mean vertex normal, each
  vertex weighted by how far the poses move it, made level (Blender is Z-up: a character stands upright,
  and a dropping jaw's downward normals must not tilt the view; when the normals have no horizontal part,
  the direction from the nearby geometry's centroid to the region's is used), up = world Z made
  perpendicular; the region's robust extent (2nd-98th percentile) times ``margin`` fills the frame, as the
  face fills a human crop.
- **Render** (``render_thumbnail``): every renderable object of the character in a new scene with its own
  camera and world (the user's scene, camera and render settings are untouched), Workbench with texture
  colours when the character's images load (material colours otherwise), studio light, a plain background.

``FaceFrame.project`` maps world points to thumbnail pixels exactly as the render does (checked by a test).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from .character import apply_library_pose, evaluated, evaluated_many, rest_bones, set_shape_keys, visible_meshes


@dataclass
class ThumbnailConfig:
    size: int = 256  # thumbnail side in pixels
    margin: float = 1.5  # frame side / the face region's larger side
    engine: str = "BLENDER_WORKBENCH"  # BLENDER_WORKBENCH | CYCLES
    color: str = "AUTO"  # AUTO (texture when every image loads, else material) | TEXTURE | MATERIAL | SINGLE
    background: tuple[float, float, float] = (0.93, 0.93, 0.95)  # plain world colour
    outline: bool = True  # Workbench object outline (as the toon training renders)
    level: bool = True  # drop the vertical part of the face normal when the face is upright
    cycles_samples: int = 16  # samples when engine is CYCLES
    # Workbench anti-aliasing samples (OFF | FXAA | 5 | 8 | 11 | 16 | 32): each sample redraws the scene, the
    # bulk of a thumbnail's cost on a software GL. Chosen on the toon: 5 is as close to a 32-sample render as
    # Blender's default 8 (0.88 vs 0.86/255 per pixel); the shared rigs were only measured afterwards, as a
    # check, never to choose (docs/benchmarks.md).
    aa_samples: str = "5"
    move_tolerance: float = 1e-4  # a vertex "moves" beyond this fraction of the character's size


@dataclass
class FaceRegion:
    """Vertices of the face: per object name, the mask of moving vertices (evaluated mesh order), their rest
    positions and normals, and their largest displacement over the poses."""

    masks: dict[str, np.ndarray]
    rest: dict[str, np.ndarray]
    normals: dict[str, np.ndarray]
    motion: dict[str, np.ndarray]
    pose_motion: list[float] = field(default_factory=list)  # per pose: largest displacement / character size
    size: float = 1.0  # the character's bounding-box diagonal (world units)

    def points(self) -> np.ndarray:
        return np.concatenate([self.rest[o][m] for o, m in self.masks.items()]) if self.masks else np.zeros((0, 3))

    def mean_normal(self) -> np.ndarray:
        """Mean unit normal of the region, each vertex weighted by how far the poses move it (the features
        that move most face the viewer; closed parts such as eyeballs cancel out)."""
        n = np.zeros(3)
        for o, m in self.masks.items():
            w = self.motion[o][m]
            n += (self.normals[o][m] * (w / max(w.max(), 1e-12))[:, None]).sum(axis=0)
        return n / max(np.linalg.norm(n), 1e-12)

    def centroid_direction(self) -> np.ndarray:
        """Unit direction from the centroid of everything near the region to the region's centroid (from
        inside the head towards the face)."""
        pts = self.points()
        c = pts.mean(axis=0)
        radius = float(np.linalg.norm(pts.max(axis=0) - pts.min(axis=0)))
        near = np.concatenate([co[np.linalg.norm(co - c, axis=1) < radius] for co in self.rest.values()])
        d = c - near.mean(axis=0)
        return d / max(np.linalg.norm(d), 1e-12)


@dataclass
class FaceFrame:
    """An orthographic face-on view: camera at ``centre + forward * distance`` looking along ``-forward``."""

    centre: np.ndarray  # (3,) world point at the frame's centre
    forward: np.ndarray  # (3,) unit, from the face towards the camera
    up: np.ndarray  # (3,) unit, image up
    right: np.ndarray  # (3,) unit, image right
    extent: float  # world units across the frame (orthographic scale)
    distance: float  # camera distance from centre
    size: int  # pixels

    def project(self, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, 2) pixel coordinates (x right, y down) and (N,) depth from the camera of world points."""
        p = np.asarray(pts, dtype=np.float64) - self.centre
        u = (p @ self.right) / self.extent + 0.5
        v = 0.5 - (p @ self.up) / self.extent
        depth = self.distance - p @ self.forward
        return np.stack([u * self.size, v * self.size], axis=1), depth

    def camera_matrix(self) -> np.ndarray:
        """4x4 world matrix of the camera (Blender cameras look down their local -Z, +Y up)."""
        m = np.eye(4)
        m[:3, 0], m[:3, 1], m[:3, 2] = self.right, self.up, self.forward
        m[:3, 3] = self.centre + self.forward * self.distance
        return m


def show_pose(objs: list, pose: dict) -> None:
    """Put the character (at rest) into ``pose``: a library pose (it has a ``type``) or shape-key values per
    mesh ({object: {key: value}})."""
    if "type" in pose:
        apply_library_pose(objs, pose)
    else:
        set_shape_keys(objs, pose)


def to_rest(objs: list) -> None:
    """Every shape key at 0 and every pose bone at identity."""
    set_shape_keys(objs, {})
    rest_bones(objs)


def face_region(objs: list, poses: list[dict], tolerance: float = 1e-4, size: float | None = None) -> FaceRegion:
    """The vertices any of ``poses`` (``show_pose``, applied in turn from rest) moves. The character must be at
    rest (``RestState``); it is left at rest. ``FaceRegion.pose_motion`` holds each pose's largest vertex
    displacement as a fraction of the character's size (0: the pose moves nothing)."""
    meshes = [o for o in visible_meshes(objs) if o.type == "MESH"]
    if not meshes:
        raise ValueError("the character has no visible mesh to render")
    import bpy

    rest, normals = {}, {}
    dg = bpy.context.evaluated_depsgraph_get()
    for o in meshes:
        rest[o.name], normals[o.name] = evaluated(o, normals=True, depsgraph=dg)
    allp = np.concatenate(list(rest.values()))
    if not len(allp):
        raise ValueError("the character's meshes have no vertices")
    if size is None:
        size = float(np.linalg.norm(allp.max(axis=0) - allp.min(axis=0)))
    tol = tolerance * size
    motion = {name: np.zeros(len(co)) for name, co in rest.items()}
    per_pose = []
    try:
        for pose in poses:
            show_pose(objs, pose)
            peak = 0.0
            posed = evaluated_many(meshes, rest)
            for o in meshes:
                co = posed[o.name]
                if co.shape == rest[o.name].shape:
                    d = np.linalg.norm(co - rest[o.name], axis=1)
                    motion[o.name] = np.maximum(motion[o.name], d)
                    peak = max(peak, float(d.max(initial=0.0)))
            per_pose.append(peak / max(size, 1e-12))
    finally:
        to_rest(objs)
    masks = {name: m > tol for name, m in motion.items() if (m > tol).any()}
    if sum(int(m.sum()) for m in masks.values()) < 3:
        raise ValueError("no pose moves the character's vertices: nothing to frame as a face")
    return FaceRegion(masks=masks, rest=rest, normals=normals, motion=motion, pose_motion=per_pose, size=size)


def frame_face(region: FaceRegion, cfg: ThumbnailConfig | None = None) -> FaceFrame:
    """The face-on orthographic view of ``region`` (see the module docstring)."""
    cfg = cfg or ThumbnailConfig()
    fwd = region.mean_normal()
    if cfg.level:  # Blender is Z-up: look at an upright face horizontally
        horiz = np.array([fwd[0], fwd[1], 0.0])
        if np.linalg.norm(horiz) < 0.1:
            c = region.centroid_direction()
            horiz = np.array([c[0], c[1], 0.0])
        if np.linalg.norm(horiz) >= 0.05:
            fwd = horiz / np.linalg.norm(horiz)
    world_up = np.array([0.0, 0.0, 1.0]) if abs(fwd[2]) < 0.95 else np.array([0.0, 1.0, 0.0])
    up = world_up - fwd * (world_up @ fwd)
    up /= np.linalg.norm(up)
    right = np.cross(up, fwd)
    pts = region.points()
    c0 = pts.mean(axis=0)
    rel = pts - c0
    xs, ys = rel @ right, rel @ up
    (x0, x1), (y0, y1) = np.percentile(xs, [2, 98]), np.percentile(ys, [2, 98])
    centre = c0 + right * (x0 + x1) / 2 + up * (y0 + y1) / 2
    extent = max(x1 - x0, y1 - y0, 1e-6) * cfg.margin
    depth_span = float(np.ptp(rel @ fwd)) if len(rel) else 0.0
    distance = max(extent * 4.0, depth_span * 4.0)
    return FaceFrame(centre, fwd, up, right, float(extent), float(distance), cfg.size)


def textures_load(objs: list) -> tuple[bool, list[str]]:
    """(whether the character shows at least one image texture, names of images that do not load)."""
    has, broken = False, []
    for o in visible_meshes(objs):
        for slot in getattr(o, "material_slots", []):
            mat = slot.material
            if mat is None or mat.node_tree is None:
                continue
            for node in mat.node_tree.nodes:
                if node.type == "TEX_IMAGE" and node.image is not None:
                    img = node.image
                    if img.size[0] > 0 and img.size[1] > 0:
                        has = True
                    elif img.name not in broken:
                        broken.append(img.name)
    return has, broken


def color_mode(objs: list, cfg: ThumbnailConfig) -> str:
    if cfg.color != "AUTO":
        return cfg.color
    has, broken = textures_load(objs)
    return "TEXTURE" if has and not broken else "MATERIAL"


class ThumbnailScene:
    """A temporary scene holding the character, a camera on ``frame`` and a plain world; removed on exit."""

    def __init__(self, objs: list, frame: FaceFrame, cfg: ThumbnailConfig | None = None):
        self.objs, self.frame, self.cfg = objs, frame, cfg or ThumbnailConfig()

    def __enter__(self) -> ThumbnailScene:
        import bpy
        from mathutils import Matrix

        cfg, fr = self.cfg, self.frame
        self.scene = scene = bpy.data.scenes.new("deepexpr_thumbnail")
        self.cam_data = bpy.data.cameras.new("deepexpr_thumbnail_cam")
        self.cam = bpy.data.objects.new("deepexpr_thumbnail_cam", self.cam_data)
        self.world = bpy.data.worlds.new("deepexpr_thumbnail_world")
        self.world.color = cfg.background
        scene.world = self.world
        scene.view_settings.view_transform = "Standard"
        self.cam_data.type = "ORTHO"
        self.cam_data.ortho_scale = fr.extent
        self.cam_data.clip_start = fr.distance * 0.01
        self.cam_data.clip_end = fr.distance * 4
        self.cam.matrix_world = Matrix(fr.camera_matrix().tolist())
        scene.collection.objects.link(self.cam)
        for o in self.objs:
            scene.collection.objects.link(o)
        scene.camera = self.cam
        r = scene.render
        r.engine = cfg.engine
        r.resolution_x = r.resolution_y = fr.size
        r.resolution_percentage = 100
        r.image_settings.file_format = "PNG"
        r.image_settings.color_mode = "RGB"
        r.film_transparent = False
        if cfg.engine == "BLENDER_WORKBENCH":
            scene.display.render_aa = cfg.aa_samples
            sh = scene.display.shading
            sh.light = "STUDIO"
            sh.color_type = color_mode(self.objs, cfg)
            sh.show_object_outline = cfg.outline
            sh.object_outline_color = (0.08, 0.05, 0.05)
            sh.show_cavity = True
            sh.cavity_type = "WORLD"
            sh.show_specular_highlight = False
            if sh.color_type == "SINGLE":
                sh.single_color = (0.8, 0.68, 0.6)
        elif cfg.engine == "CYCLES":
            scene.cycles.samples = cfg.cycles_samples
            scene.cycles.use_denoising = False
            scene.cycles.device = "CPU"
            self.world.use_nodes = True
            bg = self.world.node_tree.nodes.get("Background")
            if bg is not None:
                bg.inputs[0].default_value = (*cfg.background, 1.0)
                bg.inputs[1].default_value = 1.0
            self.sun_data = bpy.data.lights.new("deepexpr_thumbnail_key", "SUN")
            self.sun_data.energy = 3.0
            self.sun = bpy.data.objects.new("deepexpr_thumbnail_key", self.sun_data)
            key_dir = fr.forward + 0.5 * fr.up + 0.3 * fr.right
            self.sun.matrix_world = Matrix(_look_matrix(key_dir).tolist())
            scene.collection.objects.link(self.sun)
        return self

    def render(self, path: str) -> str:
        import bpy

        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self.scene.render.filepath = path
        bpy.ops.render.render(write_still=True, scene=self.scene.name)
        return path

    def __exit__(self, *exc) -> None:
        import bpy

        bpy.data.scenes.remove(self.scene)
        bpy.data.objects.remove(self.cam)
        bpy.data.cameras.remove(self.cam_data)
        bpy.data.worlds.remove(self.world)
        if getattr(self, "sun", None) is not None:
            bpy.data.objects.remove(self.sun)
            bpy.data.lights.remove(self.sun_data)


def _look_matrix(towards_light: np.ndarray) -> np.ndarray:
    """A 4x4 rotation whose -Z points against ``towards_light`` (a sun shining back along it)."""
    z = towards_light / np.linalg.norm(towards_light)
    ref = np.array([0.0, 0.0, 1.0]) if abs(z[2]) < 0.95 else np.array([0.0, 1.0, 0.0])
    x = np.cross(ref, z)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    m = np.eye(4)
    m[:3, 0], m[:3, 1], m[:3, 2] = x, y, z
    return m


def render_thumbnail(objs: list, frame: FaceFrame, path: str, cfg: ThumbnailConfig | None = None) -> str:
    """One thumbnail of the character as currently posed."""
    with ThumbnailScene(objs, frame, cfg) as ts:
        return ts.render(path)
