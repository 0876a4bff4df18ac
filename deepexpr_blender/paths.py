"""Where the add-on reads and writes files: its user folder, the output folder beside the .blend, the chosen
pose library."""

from __future__ import annotations

import os

import bpy

from . import prefs


def user_dir(*parts: str) -> str:
    """Writable folder of the extension (never inside the add-on folder)."""
    try:
        base = bpy.utils.extension_path_user(prefs.ADDON, create=True)
    except (ValueError, AttributeError):  # running as a legacy add-on: fall back to Blender's user config
        base = os.path.join(bpy.utils.user_resource("CONFIG"), "deepexpr")
    path = os.path.join(base, *parts)
    os.makedirs(path, exist_ok=True)
    return path


def output_dir(*parts: str) -> str:
    """Next to the .blend (//deepexpr/...) when saved, else the extension's user folder."""
    if bpy.data.filepath:
        path = os.path.join(bpy.path.abspath("//deepexpr"), *parts)
        os.makedirs(path, exist_ok=True)
        return path
    return user_dir("output", *parts)


def library_root(scene) -> str:
    """The chosen library folder, or "" for the backend's built-in library."""
    props = scene.deepexpr
    if props.library == "CUSTOM":
        return bpy.path.abspath(props.library_path)
    if props.library.startswith("PREF"):
        p = prefs.get()
        i = int(props.library[4:])
        return bpy.path.abspath(p.library_folders[i].path) if p and i < len(p.library_folders) else ""
    return ""
