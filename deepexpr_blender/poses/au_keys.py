"""Expressions from action-unit key schemes: ``{"type": "au_expression", "target", "values", "meshes"}``
(keys like a shape-key pose).

Found on a character whose shape keys follow one of the documented schemes of
``core.expression_keys.detect_scheme``: FACS action units (``AU_01_InnerBrowRaiser``, ``AU_12_L_...``:
Rocketbox and most FACS rigs), the VALID / Character Generator ``h_expressions`` set, Jeeliz Weboji's 11
morphs, or DeepExpr's own toon keys. The seven expressions of the AU table are composed on them at several
intensities (an expression the rig covers for less than 60 % of its AU weight is not offered), plus neutral.
"""

from __future__ import annotations

from .arkit import ArkitExpressionPose


class AuExpressionPose(ArkitExpressionPose):
    type = "au_expression"
    title = "action-unit expression"
    source = "facs"
    schemes = ("deepexpr", "facs", "valid", "weboji")


KIND = AuExpressionPose()
