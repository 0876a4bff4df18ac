"""Bring a character file into the current scene and say which objects it added (bpy).

``.fbx`` -> ``import_scene.fbx``; ``.glb``/``.gltf``/``.vrm`` -> ``import_scene.gltf`` (a ``.vrm`` is a glTF
binary: its expression table is read separately by ``core.vrm``, from the path this puts in the roots'
``deepexpr_vrm`` property); ``.blend`` -> every object of the file
appended. Imported animations stay on the objects: ``character.RestState`` detaches them while a library is
built, and they are never taken for poses.
"""

from __future__ import annotations

import os

EXTENSIONS = (".fbx", ".glb", ".gltf", ".vrm", ".blend")


def import_character(path: str) -> list:
    """Import ``path``; returns the objects it added (ValueError for an unknown extension)."""
    import bpy

    ext = os.path.splitext(path)[1].lower()
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file")
    before = set(bpy.data.objects)
    if ext == ".fbx":
        bpy.ops.import_scene.fbx(filepath=path)
    elif ext in (".glb", ".gltf", ".vrm"):
        bpy.ops.import_scene.gltf(filepath=path)
    elif ext == ".blend":
        with bpy.data.libraries.load(path, link=False) as (src, dst):
            dst.objects = list(src.objects)
        for o in dst.objects:
            if o is not None and o.users_scene == ():
                bpy.context.scene.collection.objects.link(o)
    else:
        raise ValueError(f"{path}: cannot import {ext!r} files (expected one of {', '.join(EXTENSIONS)})")
    added = [o for o in bpy.data.objects if o not in before]
    if ext == ".vrm":  # Blender's importer drops the expression table: say where to read it
        for o in added:
            if o.parent is None:
                o["deepexpr_vrm"] = os.path.abspath(path)
    return added


def pick_face_object(objs: list):
    """The object a user would pick: the mesh with the most shape keys (ties: most vertices), else the root."""
    meshes = [o for o in objs if o.type == "MESH" and o.data.shape_keys and len(o.data.shape_keys.key_blocks) > 1]
    if meshes:
        return max(meshes, key=lambda o: (len(o.data.shape_keys.key_blocks), len(o.data.vertices)))
    roots = [o for o in objs if o.parent is None]
    if not roots:
        raise ValueError("the file added no object")
    return roots[0]
