"""Feature room: pose libraries from the user's rig (Build library from rig) and the toon characters."""

from __future__ import annotations

import bpy

from . import dialog, ops, ui

classes = (*ops.classes, *dialog.classes, *ui.classes)
register, unregister = bpy.utils.register_classes_factory(classes)
