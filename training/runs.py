"""Run folders that never overwrite (``runs/00012-expression-fer/``), seeding, and checkpoint dicts."""

from __future__ import annotations

import json
import logging
import os
import random
import re
from typing import Any

import numpy as np
import torch

log = logging.getLogger(__name__)


def new_run_dir(root: str, tag: str) -> str:
    """Create ``root/NNNNN-tag`` with the next free number (never reuses an existing folder)."""
    os.makedirs(root, exist_ok=True)
    nums = [int(m.group(1)) for d in os.listdir(root) if (m := re.match(r"(\d{5})-", d))]
    n = max(nums, default=-1) + 1
    while True:
        path = os.path.join(root, f"{n:05d}-{tag}")
        try:
            os.makedirs(path)
            return path
        except FileExistsError:
            n += 1


def seed_everything(seed: int, rank: int = 0) -> None:
    """Seed python, numpy and torch (offset per rank). CPU runs are repeatable for the same thread count;
    cuDNN kernels on GPU are not bitwise deterministic."""
    s = seed + rank
    random.seed(s)
    np.random.seed(s % (2**32))
    torch.manual_seed(s)


def worker_init(worker_id: int) -> None:
    s = torch.initial_seed() % (2**32)
    np.random.seed(s)
    random.seed(s)


class StatsLog:
    def __init__(self, run_dir: str):
        self.path = os.path.join(run_dir, "stats.jsonl")

    def write(self, **row: Any) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")


def save_checkpoint(path: str, **state: Any) -> None:
    tmp = path + ".tmp"
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)
