"""What the expression pose kinds share (``vrm_expressions``, ``arkit``, ``au_keys``, ``named_keys``): a rig
whose shape keys already say its expressions gets them composed at several intensities (the documented
mapping of ``core.expression_keys``, or the VRM file's own table), plus its neutral, without the user keying
anything. Each kind keys like a shape-key pose (on every mesh of the character the expression moves); only
where the poses come from differs."""

from __future__ import annotations

from ..core import expression_keys as ek
from ..errors import RigError
from .shape_keys import ShapeKeyPose


class ExpressionPose(ShapeKeyPose):
    """Base of the kinds whose poses are expressions composed from a rig's own shape keys."""

    title = "expression"
    automatic = True  # found without the user keying anything
    source = ""

    def compose(self, obj, intensities: tuple[float, ...]) -> tuple[list[ek.ComposedPose], dict] | None:
        """(poses, report) this kind composes on ``obj``'s character, or None when it does not apply."""
        return None

    def finds_in(self, obj) -> bool:
        try:
            return self.compose(obj, ek.DEFAULT_INTENSITIES) is not None
        except RigError:
            return True  # it applies, and find() will say what is wrong

    def find(self, obj, animation: bool = False, intensities: tuple[float, ...] = ek.DEFAULT_INTENSITIES) -> list[dict]:
        from ..rigs.builder import from_composed
        from ..rigs.character import character_objects

        found = self.compose(obj, intensities)
        if found is None:
            raise RigError(f"{obj.name}: no {self.title}s found")
        composed, report = found
        full = {p.expression: p for p in composed if p.intensity == 1.0}
        objs = character_objects(obj)
        rig_poses = from_composed(objs, composed, self.type)
        bases = from_composed(objs, [full.get(p.expression, p) for p in composed], self.type)
        out = []
        for p, base in zip(rig_poses, bases):
            out.append(
                {
                    "pose": p.pose,
                    "base": base.pose,  # the expression at full intensity: the dialog rescales it
                    "label": p.label,
                    "expression": p.expression,
                    "intensity": p.intensity,
                    "name": p.name,
                    "source": p.source,
                    "report": report,
                }
            )
        return out

    def roles(self, obj) -> dict:
        """Landmark roles (keys whose motion marks the eyes, brows, mouth and jaw) on ``obj``'s character."""
        from ..rigs.character import character_objects, shape_key_meshes

        return ek.landmark_roles(shape_key_meshes(character_objects(obj)))


def keys_of(obj) -> dict[str, list[str]]:
    """Mesh name -> its shape key names, over ``obj``'s character."""
    from ..rigs.character import character_objects, shape_key_meshes

    return shape_key_meshes(character_objects(obj))
