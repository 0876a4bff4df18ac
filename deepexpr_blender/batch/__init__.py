"""Feature room: batch retrieval over a video or image folder, keyed on the target over the timeline."""

from __future__ import annotations

import bpy

from . import ops, ui

classes = (*ops.classes, *ui.classes)
register, unregister = bpy.utils.register_classes_factory(classes)
