"""Feature room: capture a face (webcam, image, movie strip) and read its landmarks and expression."""

from __future__ import annotations

import bpy

from . import neutral, ops, ui

classes = (*ops.classes, *neutral.classes, *ui.classes)
register, unregister = bpy.utils.register_classes_factory(classes)
