"""Starting a run (process group, threads, logging, a run folder that never overwrites:
``runs/00012-expression-fer2013/``), seeding, stats, and checkpoint dicts."""

from __future__ import annotations

import json
import logging
import os
import random
import re
from typing import Any

import numpy as np
import torch

from . import dist
from .config import RunConfig

log = logging.getLogger(__name__)


def start_run(
    rc: RunConfig, cfg: dict, tag: str, subdirs: tuple[str, ...] = ("checkpoints",)
) -> tuple[dist.DistInfo, str]:
    """Join the process group (``torchrun``) or run as a world of one, set threads and logging, and on rank 0
    create the run folder ``rc.runs_root/NNNNN-tag`` with ``subdirs``, ``config.json`` and ``log.txt``.
    Returns (DistInfo, run folder; "" on other ranks). Seeding is left to the loop, after its data is loaded:
    building crops runs the engine, whose construction draws from torch's generator."""
    di = dist.init_distributed(rc.device)
    if rc.threads:
        torch.set_num_threads(rc.threads)
    logging.basicConfig(
        level=logging.INFO if di.is_main else logging.WARNING, format=f"%(asctime)s [rank {di.rank}] %(message)s"
    )
    run_dir = ""
    if di.is_main:
        run_dir = new_run_dir(rc.runs_root, tag)
        for d in subdirs:
            os.makedirs(os.path.join(run_dir, d))
        with open(os.path.join(run_dir, "config.json"), "w") as f:
            json.dump(cfg, f, indent=2)
        logging.getLogger().addHandler(logging.FileHandler(os.path.join(run_dir, "log.txt")))
        log.info("run %s, world %d, device %s", run_dir, di.world_size, di.device)
    dist.barrier()
    return di, run_dir


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
