"""Procedural stylized characters (built in Blender) and their expression data."""

import json
import os

EXPRESSIONS_PATH = os.path.join(os.path.dirname(__file__), "expressions.json")


def load_expression_table(path: str = EXPRESSIONS_PATH) -> dict:
    """The documented AU table: {"action_units": {AU: shape_key}, "expressions": {name: {AU: [lo, hi]}}, ...}."""
    with open(path, encoding="utf-8") as f:
        table = json.load(f)
    aus = table["action_units"]
    for expr, combo in table["expressions"].items():
        for au, (lo, hi) in combo.items():
            if au not in aus or not 0 <= lo <= hi <= 1:
                raise ValueError(f"expressions.json: {expr}: bad entry {au}: {[lo, hi]}")
    return table
