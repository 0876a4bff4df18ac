"""Where an added character goes: at the 3D cursor unless that overlaps what is already in the scene, then to
the right of it, clear of every object with geometry; selected, active and the Target."""

from __future__ import annotations

import numpy as np

SOLID = {"MESH", "CURVE", "SURFACE", "META", "FONT", "ARMATURE", "GPENCIL", "GREASEPENCIL", "VOLUME"}
GAP = 0.25  # space left between the new character and its neighbour (Blender units)


def world_bounds(obj) -> tuple[np.ndarray, np.ndarray]:
    from mathutils import Vector

    pts = np.array([obj.matrix_world @ Vector(c) for c in obj.bound_box])
    return pts.min(axis=0), pts.max(axis=0)


def _overlaps(a: tuple, b: tuple) -> bool:
    return bool(np.all(a[0] < b[1]) and np.all(b[0] < a[1]))


def place_clear(obj, context, location) -> None:
    """Put ``obj`` at ``location``, then move it along +X until its box overlaps no other solid object."""
    obj.location = location
    context.view_layer.update()
    others = [
        world_bounds(o)
        for o in context.scene.objects
        if o is not obj and o.parent is not obj and o.type in SOLID and o.visible_get()
    ]
    others = [b for b in others if b[1][0] > b[0][0] or b[1][2] > b[0][2]]  # points and flat nothings do not count
    for _ in range(100):
        mine = world_bounds(obj)
        hit = [b for b in others if _overlaps(mine, b)]
        if not hit:
            return
        right = max(b[1][0] for b in hit)
        obj.location.x += right - mine[0][0] + GAP
        context.view_layer.update()


def make_target(obj, context) -> None:
    """``obj`` alone selected, active, and the Target of DeepExpr."""
    for o in context.view_layer.objects:
        o.select_set(False)
    obj.select_set(True)
    context.view_layer.objects.active = obj
    context.scene.deepexpr.target = obj
