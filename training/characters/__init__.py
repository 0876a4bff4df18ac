"""Procedural stylized characters (built in Blender) and their expression data.

The AU table the renderer samples is the add-on's own (``deepexpr_blender/core/expressions.json``, one copy):
the rig builder composes the same expressions onto a user's keys."""

from deepexpr_blender.core.expression_keys import EXPRESSIONS_PATH, load_au_table


def load_expression_table(path: str = EXPRESSIONS_PATH) -> dict:
    """The documented AU table: {"action_units": {AU: shape_key}, "expressions": {name: {AU: [lo, hi]}}, ...}."""
    return load_au_table(path)
