"""Registration of the add-on's rooms, in order; unregistered in reverse. Registering twice works.

Each room has its own ordered ``classes`` and ``register()``/``unregister()`` (Blender Studio's Kitsu add-on
layout): state first (scene properties, preferences), then the backend session, the UI frame (the sidebar
panels the features' sub-panels hang from), then the features in the order their sub-panels appear.
"""

from __future__ import annotations

from . import batch, capture, find_and_key, jobs, library_from_rig, live, prefs, props, session, sidebar, transitions

ROOMS = (props, prefs, session, jobs, sidebar, capture, find_and_key, library_from_rig, transitions, batch, live)


def register() -> None:
    for room in ROOMS:
        room.register()


def unregister() -> None:
    for room in reversed(ROOMS):
        room.unregister()
