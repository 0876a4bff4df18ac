"""Feature room: the add-on's frame in Blender's UI. The two "DeepExpr" sidebar panels (3D View and
Sequencer) with the status lines, and the DeepExpr menu (Object > Animation, Sequencer > Strip). The feature
rooms fill the panels with their own sub-panels (``VIEW3D_PARENT`` / ``SEQUENCER_PARENT``)."""

from __future__ import annotations

import bpy

from .. import previews
from . import panels
from .panels import SEQUENCER_PARENT, VIEW3D_PARENT, SequencerSubPanel, View3DSubPanel

classes = panels.classes
_register_classes, _unregister_classes = bpy.utils.register_classes_factory(classes)


def register() -> None:
    _register_classes()
    for name in panels.MENUS:
        menu = getattr(bpy.types, name, None)
        if menu is not None:
            menu.append(panels.menu_entry)


def unregister() -> None:
    for name in panels.MENUS:
        menu = getattr(bpy.types, name, None)
        if menu is not None:
            menu.remove(panels.menu_entry)
    previews.unregister()
    _unregister_classes()


__all__ = ["SEQUENCER_PARENT", "VIEW3D_PARENT", "SequencerSubPanel", "View3DSubPanel", "register", "unregister"]
