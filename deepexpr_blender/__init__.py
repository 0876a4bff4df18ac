"""DeepExpr for Blender: the extension's entry point.

Blender-facing code (``ui``, ``ops``, ``props``, ``prefs``) is imported inside ``register()`` only, so the
plain modules of this package (``protocol``, ...) import without ``bpy``: the backend shares ``protocol``
with the add-on, and plain pytest tests them.
"""


def register() -> None:
    from . import addon

    addon.register()


def unregister() -> None:
    from . import addon

    addon.unregister()
