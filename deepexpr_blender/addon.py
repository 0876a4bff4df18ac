"""Registration of the add-on's Blender parts, in order; unregistered in reverse. Registering twice works."""

from __future__ import annotations

import atexit

import bpy

from . import ops, prefs, props, ui


def register() -> None:
    for cls in props.classes:
        bpy.utils.register_class(cls)
    props.register()
    for cls in prefs.classes:
        bpy.utils.register_class(cls)
    ops.register()
    ui.register()
    # Blender quitting: stop the backend cleanly (it also exits by itself when Blender's process dies).
    atexit.register(ops.runtime.unregister)


def unregister() -> None:
    atexit.unregister(ops.runtime.unregister)
    ui.unregister()
    ops.unregister()
    for cls in reversed(prefs.classes):
        bpy.utils.unregister_class(cls)
    props.unregister()
    for cls in reversed(props.classes):
        bpy.utils.unregister_class(cls)
