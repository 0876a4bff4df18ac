"""DeepExpr for Blender: the extension's entry point.

Blender-facing code is imported inside ``register()`` only, so the plain parts of this package (``core``,
``poses``' validation, ``errors``, ``client``) import without ``bpy``: the backend shares ``core`` with the
add-on, and plain pytest tests them. The rooms and their one-way arrows: ``docs/architecture.md``.
"""


def register() -> None:
    from . import addon

    addon.register()


def unregister() -> None:
    from . import addon

    addon.unregister()
