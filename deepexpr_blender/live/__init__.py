"""Feature room: the live mirror (the target wears the actor's closest pose at webcam rate, Record keys it) and
sparse key poses from a performance (a video or a recorded live take)."""

from __future__ import annotations

import bpy

from . import ops, props, ui, workflow

classes = (*props.classes, *ops.classes, *ui.classes)
_register_classes, _unregister_classes = bpy.utils.register_classes_factory(classes)


@bpy.app.handlers.persistent
def _end_live_on_load(*_args) -> None:
    """Another .blend: live mode ends (the session's answers belong to the old file; keys there were kept)."""
    workflow.stop_all("Live ended (file loaded)")
    workflow.forget_takes()


def register() -> None:
    _register_classes()
    bpy.types.Scene.deepexpr_live = bpy.props.PointerProperty(type=props.DEEPEXPR_PG_live)
    if _end_live_on_load not in bpy.app.handlers.load_pre:
        bpy.app.handlers.load_pre.append(_end_live_on_load)


def unregister() -> None:
    if _end_live_on_load in bpy.app.handlers.load_pre:
        bpy.app.handlers.load_pre.remove(_end_live_on_load)
    workflow.stop_all("the add-on was disabled")
    del bpy.types.Scene.deepexpr_live
    _unregister_classes()
