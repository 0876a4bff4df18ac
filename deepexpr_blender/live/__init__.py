"""Feature room: the live mirror (the target wears the actor's closest pose at webcam rate, Record keys it) and
sparse key poses from a performance (a video or a recorded live take)."""

from __future__ import annotations

import bpy

from . import ops, props, ui, workflow

classes = (*props.classes, *ops.classes, *ui.classes)
_register_classes, _unregister_classes = bpy.utils.register_classes_factory(classes)


def register() -> None:
    _register_classes()
    bpy.types.Scene.deepexpr_live = bpy.props.PointerProperty(type=props.DEEPEXPR_PG_live)


def unregister() -> None:
    workflow.stop_all("the add-on was disabled")
    del bpy.types.Scene.deepexpr_live
    _unregister_classes()
