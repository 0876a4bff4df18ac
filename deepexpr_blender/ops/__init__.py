"""Operators and the backend runtime (bpy)."""

from . import operators, runtime

classes = operators.classes


def register() -> None:
    import bpy

    for cls in classes:
        bpy.utils.register_class(cls)
    runtime.register()


def unregister() -> None:
    import bpy

    runtime.unregister()
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
