"""Train the landmark-guided expression GAN (Qiao et al. 2018) on CK+ same-identity pairs.

    python -m training.train_gan [--iterations 3000] [--fold 0] [--lambdas 1 1e-3 1e-4] [--dry-run]
    torchrun --nproc_per_node 2 -m training.train_gan ...     # DDP

Paper settings by default: loss = l1*L_contr + l2*L_adv + l3*L_recon with (1, 1e-3, 1e-4); Adam (0.5, 0.999),
lr 3e-4, batch 64; WGAN-GP, lambda_gp 10; 64x64; subjects in 10 folds, one held out. Writes a run folder
(config.json, log.txt, stats.jsonl, samples/, checkpoints/); ``--export-to`` writes safetensors (fp16) + card.
The loop is ``training.loops.gan``, the losses ``training.losses``; this file only reads the command line.
"""

from __future__ import annotations

import json

from backend.gan import GanConfig

from .config import RunConfig, parse_configs, resolved
from .loops.gan import GanDataConfig, GanTrainConfig, training_loop

SECTIONS = {  # section: (dataclass, flag prefix); the flags are the fields (--dataset, --model-width, --fold)
    "data": (GanDataConfig, "data_"),
    "model": (GanConfig, "model_"),
    "train": (GanTrainConfig, ""),
    "run": (RunConfig, ""),
}


def main(argv: list[str] | None = None) -> None:
    c, dry_run = parse_configs(SECTIONS, argv, __doc__)
    try:
        dc = c["data"].resolve()
    except ValueError as e:
        raise SystemExit(f"train_gan: {e}") from None
    cfg = resolved(data=dc, model=c["model"], train=(c["train"], c["run"]))
    if dry_run:
        print(json.dumps(cfg, indent=2))
        return
    training_loop(dc, c["model"], c["train"], c["run"], cfg)


if __name__ == "__main__":
    main()
