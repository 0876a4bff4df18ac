"""VRM expressions: ``{"type": "vrm_expression", "target", "values", "meshes"}`` (keys like a shape-key pose).

Found when the character came from a ``.vrm`` file: its path is the custom property ``deepexpr_vrm`` on the
character's root (set by "Build library from rig" when the user picks the file, or by
``rigs.importing.import_character``). The expression table is read from the file itself (``core.vrm``: VRM 0.x
``blendShapeGroups`` and VRM 1.0 ``VRMC_vrm.expressions``; Blender's glTF importer drops both) and mapped to
the seven labels (joy/happy, angry, sorrow/sad, surprised; relaxed and fun kept as extras with no label);
each expression at several intensities (binary ones at 1.0 only), plus neutral. A broken table is refused with
the expression and bind named.
"""

from __future__ import annotations

import os

from ..core import expression_keys as ek
from ..core import vrm as vrm_core
from ..core.vocabulary import LABELS
from ..errors import RigError
from .expressions import ExpressionPose

PROPERTY = "deepexpr_vrm"


def vrm_path(obj) -> str | None:
    """The .vrm file ``obj``'s character came from (its root's ``deepexpr_vrm`` property), if it exists."""
    from ..rigs.character import character_objects, character_root

    for o in (character_root(obj), obj, *character_objects(obj)):
        path = o.get(PROPERTY) if hasattr(o, "get") else None
        if isinstance(path, str) and path:
            import bpy

            path = bpy.path.abspath(path)
            return path if os.path.isfile(path) else None
    return None


class VrmExpressionPose(ExpressionPose):
    type = "vrm_expression"
    title = "VRM expression"
    source = "vrm"

    def compose(self, obj, intensities=ek.DEFAULT_INTENSITIES):
        from ..rigs import builder
        from ..rigs.character import character_objects

        path = vrm_path(obj)
        if path is None:
            return None
        try:
            table = vrm_core.read_vrm(path)
        except vrm_core.VrmError as exc:
            raise RigError(str(exc)) from None
        objs = character_objects(obj)
        poses = builder.vrm_poses(objs, table, intensities)
        present = {p.expression for p in poses}
        report = {
            "scheme": f"vrm {table.version}",
            "missing": [lab for lab in LABELS if lab not in present],
            "expressions": [e.name for e in table.poses()],
        }
        return poses, report

    def roles(self, obj) -> dict:
        from ..rigs import builder
        from ..rigs.character import character_objects

        path = vrm_path(obj)
        roles = super().roles(obj)
        if path:
            found = builder.vrm_roles(character_objects(obj), vrm_core.read_vrm(path))
            roles.update({k: v for k, v in found.items() if v})
        return roles


KIND = VrmExpressionPose()
