"""Feature room: find the library poses closest to the captured face, and key one on the target."""

from __future__ import annotations

import bpy

from . import ops, ui

classes = (*ops.classes, *ui.classes)
register, unregister = bpy.utils.register_classes_factory(classes)
