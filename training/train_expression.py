"""Train the human expression network (DeepExpr's first stage) on aligned crops, FER2013 by default.

    python -m training.train_expression [--epochs 30] [--dataset fer2013] [--dry-run]
    torchrun --nproc_per_node 2 -m training.train_expression ...      # DDP (gloo on CPU, nccl on GPU)

Writes a run folder (config.json, log.txt, stats.jsonl, checkpoints/last.pt, best.pt, metrics.json, plots);
``--export-to backend/weights/expression_human`` writes the released safetensors + model card. The loop is
``training.loops.expression``; this file only reads the command line.
"""

from __future__ import annotations

import dataclasses
import json

from backend.models import ExpressionNetConfig

from .config import RunConfig, parse_configs, resolved
from .loops.expression import DataConfig, TrainConfig, training_loop

SECTIONS = {  # section: (dataclass, flag prefix); the flags are the fields (--data-root, --model-widths, --epochs)
    "data": (DataConfig, "data_"),
    "model": (ExpressionNetConfig, "model_"),
    "train": (TrainConfig, ""),
    "run": (RunConfig, ""),
}


def main(argv: list[str] | None = None) -> None:
    c, dry_run = parse_configs(SECTIONS, argv, __doc__)
    try:
        dc = c["data"].resolve()
    except ValueError as e:
        raise SystemExit(f"train_expression: {e}") from None
    mc = dataclasses.replace(c["model"], input_size=dc.size)
    cfg = resolved(data=dc, model=mc, train=(c["train"], c["run"]))
    if dry_run:
        print(json.dumps(cfg, indent=2))
        return
    training_loop(dc, mc, c["train"], c["run"], cfg)


if __name__ == "__main__":
    main()
