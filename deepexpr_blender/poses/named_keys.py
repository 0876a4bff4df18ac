"""Expressions from keys named after them: ``{"type": "named_expression", "target", "values", "meshes"}``
(keys like a shape-key pose).

Found on a character with no recognised key scheme whose shape keys name whole expressions, in several
languages (``Angry``, ``Smile``, ``Fcl_ALL_Joy``, ``Traurig``, ``Sorpresa``, the usual MMD morphs ``怒り``,
``笑い``, ``悲しい``, ``驚き`` ...: ``core.expression_keys.EXPRESSION_WORDS``); each key (its left and right
halves together) is a pose family at several intensities, plus neutral. Keys naming one part of an
expression (VRoid's ``Fcl_BRW_Angry``) are used together, and only when no whole key names it.
"""

from __future__ import annotations

from ..core import expression_keys as ek
from ..core.vocabulary import LABELS
from .expressions import ExpressionPose, keys_of


class NamedExpressionPose(ExpressionPose):
    type = "named_expression"
    title = "named expression"
    source = "named"

    def compose(self, obj, intensities=ek.DEFAULT_INTENSITIES):
        keys = keys_of(obj)
        if not keys or ek.detect_scheme(keys) is not None:
            return None
        poses = ek.compose_from_names(keys, intensities)
        if not poses:
            return None
        present = {p.expression for p in poses}
        return poses, {"scheme": "named", "coverage": {}, "missing": [x for x in LABELS if x not in present]}


KIND = NamedExpressionPose()
