"""ARKit-52 expressions: ``{"type": "arkit_expression", "target", "values", "meshes"}`` (keys like a shape-key
pose).

Found on a character whose shape keys are Apple's 52 ARKit blendshapes (``browInnerUp``, ``mouthSmileLeft``,
``jawOpen`` ...; any prefix such as ``AK_44_`` or ``blendShape1.``, any ``_L``/``_R`` spelling): the seven
expressions of our AU table composed through the documented AU -> ARKit mapping
(``core.expression_keys.ARKIT_FROM_AU``) at several intensities, plus neutral. A rig whose keys are also FACS
action units is left to ``au_keys`` (``core.expression_keys.detect_scheme`` decides, first match wins).
"""

from __future__ import annotations

from ..core import expression_keys as ek
from .expressions import ExpressionPose, keys_of


class ArkitExpressionPose(ExpressionPose):
    type = "arkit_expression"
    title = "ARKit expression"
    source = "arkit"
    schemes = ("arkit",)

    def compose(self, obj, intensities=ek.DEFAULT_INTENSITIES):
        keys = keys_of(obj)
        table = ek.load_au_table()
        scheme = ek.detect_scheme(keys, table) if keys else None
        if scheme is None or scheme.name not in self.schemes:
            return None
        return ek.compose_poses(keys, intensities, table)


KIND = ArkitExpressionPose()
