"""Panels, menus and thumbnails (bpy)."""

from . import panels, previews

classes = panels.classes


def register() -> None:
    import bpy

    for cls in classes:
        bpy.utils.register_class(cls)
    for name in panels.MENUS:
        menu = getattr(bpy.types, name, None)
        if menu is not None:
            menu.append(panels.menu_entry)
    previews.register()


def unregister() -> None:
    import bpy

    previews.unregister()
    for name in panels.MENUS:
        menu = getattr(bpy.types, name, None)
        if menu is not None:
            menu.remove(panels.menu_entry)
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
