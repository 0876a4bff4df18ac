"""The add-on's rooms and their one-way arrows (docs/architecture.md), checked on the source: each
module imports only rooms in layers below its own, feature rooms never import one another, no cycles."""

from __future__ import annotations

import ast
import os

from .conftest import ROOT

PKG = os.path.join(ROOT, "deepexpr_blender")

# Top to bottom; rooms in one layer are independent of each other.
LAYERS: list[set[str]] = [
    {"__init__"},
    {"addon"},
    {"capture", "find_and_key", "library_from_rig", "transitions", "batch", "live"},  # the feature rooms
    {"sidebar"},  # the UI frame the features' sub-panels hang from
    {"operator_base"},
    {"jobs"},
    {"session"},
    {"paths", "props", "sequencer"},
    {"prefs"},
    {"status", "previews"},
    {"poses", "toon"},
    {"rigs"},  # a character in the scene: its objects, rest state, face-on framing, landmarks, the rig builder
    {"compat"},
    {"client", "errors", "messages"},
    {"core"},  # the bpy-free shared core: the only part the backend imports
]


def _room(path: str) -> str:
    first = os.path.relpath(path, PKG).split(os.sep)[0]
    return first[:-3] if first.endswith(".py") else first


def _imports() -> list[tuple[str, str, str]]:
    """(importing module path, its room, imported room) for every relative import between rooms."""
    found = []
    for dirpath, _, files in os.walk(PKG):
        for f in files:
            if not f.endswith(".py"):
                continue
            path = os.path.join(dirpath, f)
            pkg = os.path.relpath(dirpath, ROOT).split(os.sep)
            for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
                if isinstance(node, ast.ImportFrom) and node.level:
                    base = pkg[: len(pkg) - (node.level - 1)]
                    names = [node.module] if node.module else [a.name for a in node.names]
                    for name in names:
                        parts = [*base, *name.split(".")]
                        if len(parts) > 1 and parts[1] != _room(path):
                            found.append((os.path.relpath(path, ROOT), _room(path), parts[1].removesuffix(".py")))
    return found


def _layer(room: str) -> int:
    return next(i for i, rooms in enumerate(LAYERS) if room in rooms)


def test_every_room_has_a_layer():
    rooms = {n[:-3] if n.endswith(".py") else n for n in os.listdir(PKG) if not n.startswith("__pycache__")}
    assert rooms == set().union(*LAYERS), "add the new room to LAYERS (and to docs/architecture.md)"


def test_imports_point_down_only():
    bad = [f"{p}: {src} -> {dst}" for p, src, dst in _imports() if _layer(dst) <= _layer(src)]
    assert not bad, "imports against the layers:\n" + "\n".join(bad)


def test_core_and_poses_do_not_reach_up():
    assert not [i for i in _imports() if i[1] == "core"], "core imports only itself"
    assert {dst for _, src, dst in _imports() if src == "poses"} <= {"compat", "core", "errors", "rigs"}
