"""A character in the user's scene: all its objects, its shape-key meshes, its rest state, its evaluated vertices.

A character is the whole hierarchy of the object the user picked (from its top-most parent down: an armature
with its body, eyes, brows and teeth meshes), or, for a lone object inside a collection of its own, that
collection. ``RestState`` puts it in its rest pose (every shape key at 0, every pose bone at identity, actions
detached so that an imported animation cannot override the pose shown) and gives everything back on exit.
"""

from __future__ import annotations

import numpy as np

RENDERABLE = ("MESH", "CURVE", "SURFACE", "META", "FONT", "CURVES")


def character_root(obj):
    while obj.parent is not None:
        obj = obj.parent
    return obj


def character_objects(obj) -> list:
    """Every object of the character ``obj`` belongs to (root first), renderable or not."""
    root = character_root(obj)
    objs = [root, *root.children_recursive]
    if len(objs) == 1:
        import bpy

        cols = [c for c in obj.users_collection if c is not bpy.context.scene.collection]
        if len(cols) == 1 and len(cols[0].all_objects) <= 64:
            objs = [obj, *[o for o in cols[0].all_objects if o is not obj and o.parent is None]]
            objs = [o for r in objs for o in (r, *r.children_recursive)]
    seen, out = set(), []
    for o in objs:
        if o.name not in seen:
            seen.add(o.name)
            out.append(o)
    return out


def visible_meshes(objs: list) -> list:
    """Renderable objects that are not hidden from renders."""
    return [o for o in objs if o.type in RENDERABLE and not o.hide_render]


def shape_key_meshes(objs: list) -> dict[str, list[str]]:
    """Object name -> its shape key names (Basis left out), for meshes with at least one key."""
    out = {}
    for o in objs:
        sk = o.data.shape_keys if o.type == "MESH" else None
        if sk is not None and len(sk.key_blocks) > 1:
            out[o.name] = [kb.name for kb in sk.key_blocks[1:]]
    return out


def set_shape_keys(objs: list, values: dict[str, dict[str, float]]) -> None:
    """Every shape key of the character to 0, then ``values`` ({object: {key: value}}); unknown names are
    an error naming them (a pose that silently shows nothing would poison a library)."""
    by_name = {o.name: o for o in objs}
    for o in objs:
        sk = o.data.shape_keys if o.type == "MESH" else None
        if sk is not None:
            for kb in sk.key_blocks[1:]:
                kb.value = 0.0
    for mesh, kv in values.items():
        o = by_name.get(mesh)
        if o is None or o.type != "MESH" or o.data.shape_keys is None:
            raise KeyError(f"pose names {mesh!r}, which is not a mesh with shape keys in this character")
        blocks = o.data.shape_keys.key_blocks
        for key, v in kv.items():
            if key not in blocks:
                raise KeyError(f"pose names shape key {key!r}, which {mesh!r} does not have")
            kb = blocks[key]
            kb.slider_min = min(kb.slider_min, float(v))
            kb.slider_max = max(kb.slider_max, float(v))
            kb.value = float(v)


REST_CHANNELS = (
    ("location", (0.0, 0.0, 0.0)),
    ("rotation_quaternion", (1.0, 0.0, 0.0, 0.0)),
    ("rotation_euler", (0.0, 0.0, 0.0)),
    ("rotation_axis_angle", (0.0, 0.0, 1.0, 0.0)),
    ("scale", (1.0, 1.0, 1.0)),
)


def bones_at_rest(arm) -> bool:
    """Whether every pose bone of the armature ``arm`` is at identity (read in bulk, nothing written)."""
    bones = arm.pose.bones
    for attr, ident in REST_CHANNELS:
        a = np.empty(len(bones) * len(ident), np.float32)
        bones.foreach_get(attr, a)
        if not (a.reshape(-1, len(ident)) == np.asarray(ident, np.float32)).all():
            return False
    return True


def rest_bones(objs: list) -> None:
    """Every pose bone of the character's armatures at identity (its rest pose); an armature already there
    is left alone (writing every bone would tag it for a new evaluation for nothing)."""
    for o in objs:
        if o.type == "ARMATURE" and not bones_at_rest(o):
            for b in o.pose.bones:
                for attr, ident in REST_CHANNELS:
                    setattr(b, attr, ident)


def pose_meshes(pose: dict) -> dict[str, dict[str, float]]:
    """A shape-key pose's values per mesh: ``meshes`` when the pose has it, else ``{target: values}``."""
    meshes = pose.get("meshes")
    return meshes if isinstance(meshes, dict) and meshes else {pose["target"]: pose["values"]}


def apply_library_pose(objs: list, pose: dict) -> None:
    """Put the character (at rest) into a library pose: a shape-key pose (``values``, and ``meshes`` for
    several meshes: every other key at 0) or an armature pose (``action`` at ``frame``, blended from rest by
    ``weight``; no action: the rest pose)."""
    if "values" in pose:
        rest_bones(objs)
        set_shape_keys(objs, pose_meshes(pose))
        return
    if "action" not in pose:
        raise KeyError(f"cannot show a {pose.get('type')!r} pose on a rig")
    import bpy

    from .. import compat

    set_shape_keys(objs, {})
    rest_bones(objs)
    arm = next((o for o in objs if o.type == "ARMATURE" and o.name == pose.get("target")), None)
    if arm is None:
        raise KeyError(f"pose names armature {pose.get('target')!r}, which is not in this character")
    if not pose.get("action"):
        return
    action = bpy.data.actions.get(pose["action"])
    if action is None:
        raise KeyError(f"pose names action {pose['action']!r}, which is not in this file")
    compat.apply_pose_from_action(arm, action, float(pose.get("frame", 0.0)))
    w = float(pose.get("weight", 1.0))
    if w != 1.0:
        blend_from_rest(arm, w)


def blend_from_rest(arm, weight: float) -> None:
    """Scale an armature's current pose towards its rest pose (0: rest, 1: unchanged)."""
    from mathutils import Quaternion

    for b in arm.pose.bones:
        b.location = b.location * weight
        b.rotation_quaternion = Quaternion((1, 0, 0, 0)).slerp(b.rotation_quaternion, weight)
        b.rotation_euler = [v * weight for v in b.rotation_euler]
        b.scale = [1 + (v - 1) * weight for v in b.scale]


class RestState:
    """Context manager: the character at rest (keys 0, bones at identity, actions detached), restored after."""

    def __init__(self, objs: list):
        self.objs = objs
        self.saved: list = []

    def __enter__(self) -> RestState:
        for o in self.objs:
            ids = [o] + ([o.data.shape_keys] if o.type == "MESH" and o.data.shape_keys else [])
            for idb in ids:
                ad = getattr(idb, "animation_data", None)
                if ad is None:
                    continue
                if ad.action is not None:
                    self.saved.append(("action", idb, ad.action, getattr(ad, "action_slot", None)))
                    ad.action = None
                if ad.use_nla and len(ad.nla_tracks):  # stashed takes (glTF imports put them there) play too
                    self.saved.append(("nla", idb, True, None))
                    ad.use_nla = False
                for fc in ad.drivers:  # a driven key or bone would override the pose being shown
                    if not fc.mute:
                        self.saved.append(("driver", fc, False, None))
                        fc.mute = True
            if o.type == "MESH" and o.data.shape_keys:
                vals = {kb.name: kb.value for kb in o.data.shape_keys.key_blocks}
                self.saved.append(("keys", o, vals, None))
                for kb in o.data.shape_keys.key_blocks[1:]:
                    kb.value = 0.0
            if o.type == "ARMATURE":
                bones = {
                    b.name: (b.location.copy(), b.rotation_quaternion.copy(), b.rotation_euler.copy(), b.scale.copy())
                    for b in o.pose.bones
                }
                self.saved.append(("bones", o, bones, None))
                for b in o.pose.bones:
                    b.location = (0, 0, 0)
                    b.rotation_quaternion = (1, 0, 0, 0)
                    b.rotation_euler = (0, 0, 0)
                    b.scale = (1, 1, 1)
        return self

    def __exit__(self, *exc) -> None:
        for kind, target, value, extra in reversed(self.saved):
            if kind == "action":
                target.animation_data.action = value
                if extra is not None:
                    target.animation_data.action_slot = extra
            elif kind == "nla":
                target.animation_data.use_nla = value
            elif kind == "driver":
                target.mute = value
            elif kind == "keys":
                for name, v in value.items():
                    target.data.shape_keys.key_blocks[name].value = v
            elif kind == "bones":
                for b in target.pose.bones:
                    b.location, b.rotation_quaternion, b.rotation_euler, b.scale = value[b.name]
        self.saved.clear()


def evaluated(obj, normals: bool = False, depsgraph=None) -> tuple[np.ndarray, np.ndarray | None]:
    """World-space vertex positions (and unit normals) of the evaluated object: shape keys, armature and
    every modifier applied, as rendered. The evaluated mesh is read in place (no ``to_mesh`` copy) when the
    evaluated object holds one; ``depsgraph`` saves the look-up when several objects are read in one state."""
    import bpy

    dg = depsgraph if depsgraph is not None else bpy.context.evaluated_depsgraph_get()
    ev = obj.evaluated_get(dg)
    own = isinstance(ev.data, bpy.types.Mesh)
    me = ev.data if own else ev.to_mesh()
    try:
        n = len(me.vertices)
        co = np.empty(n * 3, np.float32)
        me.vertices.foreach_get("co", co)
        m = np.array(ev.matrix_world, dtype=np.float64)
        co = co.reshape(-1, 3).astype(np.float64) @ m[:3, :3].T + m[:3, 3]
        nor = None
        if normals:
            nv = np.empty(n * 3, np.float32)
            me.vertex_normals.foreach_get("vector", nv)
            nor = nv.reshape(-1, 3).astype(np.float64) @ np.linalg.inv(m[:3, :3])
            nor /= np.maximum(np.linalg.norm(nor, axis=1, keepdims=True), 1e-12)
    finally:
        if not own:
            ev.to_mesh_clear()
    return co, nor


def evaluated_many(objs: list, names) -> dict[str, np.ndarray]:
    """World-space vertex positions of the named objects of ``objs`` in the current state, one depsgraph
    evaluation for all of them."""
    import bpy

    dg = bpy.context.evaluated_depsgraph_get()
    by_name = {o.name: o for o in objs}
    return {n: evaluated(by_name[n], depsgraph=dg)[0] for n in dict.fromkeys(names)}


def bounds(objs: list) -> tuple[np.ndarray, np.ndarray]:
    """World-space bounding box (lo, hi) of the evaluated renderable objects."""
    from mathutils import Vector

    pts = [o.matrix_world @ Vector(c) for o in visible_meshes(objs) for c in o.bound_box]
    if not pts:
        raise ValueError("the character has no renderable object")
    a = np.array([p[:] for p in pts])
    return a.min(axis=0), a.max(axis=0)
