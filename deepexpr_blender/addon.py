"""Registration of the add-on's Blender classes (filled in by the extension issue)."""

classes: tuple = ()


def register() -> None:
    import bpy

    for cls in classes:
        bpy.utils.register_class(cls)


def unregister() -> None:
    import bpy

    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
