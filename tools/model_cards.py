"""Write docs/models.md from the model cards beside the shipped weights (backend/weights/*.json).

python tools/model_cards.py
"""

from __future__ import annotations

import glob
import json
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main() -> None:
    lines = [
        "# Shipped models",
        "",
        "Generated from the model cards (`backend/weights/*.json`, beside each "
        "`.safetensors`) by `python tools/model_cards.py`.",
        "",
    ]
    total = 0
    for card_path in sorted(glob.glob(os.path.join(ROOT, "backend", "weights", "*.json"))):
        st = card_path[:-5] + ".safetensors"
        if not os.path.exists(st):
            continue
        card = json.load(open(card_path))
        size = os.path.getsize(st)
        total += size
        name = os.path.basename(st)
        lines += [
            f"## `{name}` ({size / 1e6:.1f} MB)",
            "",
            f"- Architecture: `{card['architecture']}` `{json.dumps(card['config'])}`",
            f"- Input: `{json.dumps(card['input'])}`",
        ]
        if card.get("classes"):
            lines.append(f"- Classes: {', '.join(card['classes'])}")
        lines += [f"- Data and terms: {card['data']}", f"- Reproduce: `{card['reproduce']}`"]
        if card.get("notes"):
            lines.append(f"- Notes: {card['notes']}")
        if card.get("metrics"):
            lines += ["", "| metric | value |", "|---|---:|"]
            lines += [f"| {k} | {v} |" for k, v in card["metrics"].items()]
        lines.append("")
    lines.append(f"All shipped weights: {total / 1e6:.1f} MB (budget 30 MB).")
    open(os.path.join(ROOT, "docs", "models.md"), "w").write("\n".join(lines) + "\n")
    print(f"{total / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
