"""Feature room: the backend session (the one backend child process, its drain timer and status, the
operators that check it and list library folders)."""

from __future__ import annotations

import atexit

import bpy

from . import connection, ops

classes = ops.classes
_register_classes, _unregister_classes = bpy.utils.register_classes_factory(classes)


def register() -> None:
    _register_classes()
    connection.start()
    # Blender quitting: stop the backend cleanly (it also exits by itself when Blender's process dies).
    atexit.register(connection.stop)


def unregister() -> None:
    atexit.unregister(connection.stop)
    connection.stop()
    _unregister_classes()
