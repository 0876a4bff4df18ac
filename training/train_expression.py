"""Train the human expression network (DeepExpr's first stage) on aligned FER2013 crops.

    python -m training.train_expression [--epochs 30] [--dry-run]
    torchrun --nproc_per_node 2 -m training.train_expression ...      # DDP (gloo on CPU, nccl on GPU)

Writes a run folder (config.json, log.txt, stats.jsonl, checkpoints/last.pt, best.pt, report.md, plots);
``--export-to backend/weights/expression_human`` writes the released safetensors + model card.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler
from tqdm import tqdm

from backend.models import CLASSES, ExpressionNet, ExpressionNetConfig, ModelCard, normalize_crops, save_model

from . import dist
from .config import add_dataclass_args, field, from_args
from .data import SHARED_DATA, CropDataset, crop_cache, list_class_folders
from .metrics import accuracy, confusion, macro_f1, plot_confusion
from .runs import StatsLog, load_checkpoint, new_run_dir, save_checkpoint, seed_everything, worker_init

log = logging.getLogger(__name__)


@dataclass
class DataConfig:
    root: str = field(os.path.join(SHARED_DATA, "fer2013"), "class-folder data set with train/val/test splits")
    size: int = field(48, "aligned crop side in pixels")
    limit: int = field(0, "use only the first N training images per split (0: all); for smoke tests")
    workers: int = field(2, "processes for building the crop cache and for data loading")
    cache_dir: str = field("cache", "where aligned crops are cached (ignored by git)")


@dataclass
class TrainConfig:
    epochs: int = field(30, "passes over the training split")
    batch_size: int = field(128, "per process")
    lr: float = field(0.05, "peak SGD learning rate (one-cycle schedule)")
    weight_decay: float = field(5e-4, "L2 on all weights")
    label_smoothing: float = field(0.1, "cross-entropy label smoothing")
    seed: int = field(0, "seed for python, numpy, torch (offset by rank)")
    device: str = field("auto", "auto | cpu | cuda")
    threads: int = field(0, "torch CPU threads per process (0: torch's default)")
    runs_root: str = field("runs", "where run folders go")
    resume: str = field("", "checkpoint to resume from (a run's checkpoints/last.pt)")
    export_to: str = field("", "write <path>.safetensors + <path>.json from the best checkpoint")


def make_loaders(dc: DataConfig, tc: TrainConfig, di: dist.DistInfo):
    splits = {}
    for split in ("train", "val", "test"):
        items = list_class_folders(os.path.join(dc.root, split))
        if dc.limit:
            items = items[: dc.limit]
        splits[split] = crop_cache(
            items,
            dc.size,
            dc.cache_dir,
            workers=dc.workers if di.is_main else 1,
            tag=f"{os.path.basename(os.path.normpath(dc.root))}-{split}",
        )
    train_ds = CropDataset(splits["train"]["x"], splits["train"]["y"], augment=True)
    sampler = DistributedSampler(train_ds, di.world_size, di.rank, shuffle=True, seed=tc.seed) if di.enabled else None
    g = torch.Generator().manual_seed(tc.seed + di.rank)
    train = DataLoader(
        train_ds,
        tc.batch_size,
        shuffle=sampler is None,
        sampler=sampler,
        drop_last=True,
        num_workers=min(dc.workers, 2) if not di.enabled else 0,
        worker_init_fn=worker_init,
        generator=g,
        persistent_workers=dc.workers > 0 and not di.enabled,
    )
    return train, splits


@torch.inference_mode()
def predict(model: torch.nn.Module, x: np.ndarray, device: torch.device, flip_tta: bool = True) -> np.ndarray:
    """Class probabilities for uint8 crops (N,S,S), averaged with the mirrored crop (test-time augmentation)."""
    model.eval()
    out = []
    for i in range(0, len(x), 512):
        t = normalize_crops(x[i : i + 512]).to(device)
        p = F.softmax(model(t), 1)
        if flip_tta:
            p = (p + F.softmax(model(torch.flip(t, dims=[3])), 1)) / 2
        out.append(p.cpu().numpy())
    return np.concatenate(out)


def evaluate(model, data: dict, device) -> dict:
    probs = predict(model, data["x"], device)
    cm = confusion(data["y"], probs.argmax(1), len(CLASSES))
    return {"acc": accuracy(cm), "macro_f1": macro_f1(cm), "cm": cm}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_dataclass_args(ap, DataConfig, "data_")
    add_dataclass_args(ap, ExpressionNetConfig, "model_")
    add_dataclass_args(ap, TrainConfig)
    ap.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")
    args = ap.parse_args(argv)
    dc, mc, tc = (
        from_args(DataConfig, args, "data_"),
        from_args(ExpressionNetConfig, args, "model_"),
        from_args(TrainConfig, args),
    )
    mc = dataclasses.replace(mc, input_size=dc.size)
    cfg = {"data": dataclasses.asdict(dc), "model": dataclasses.asdict(mc), "train": dataclasses.asdict(tc)}
    if args.dry_run:
        print(json.dumps(cfg, indent=2))
        return
    di = dist.init_distributed(tc.device)
    if tc.threads:
        torch.set_num_threads(tc.threads)
    seed_everything(tc.seed, di.rank)
    logging.basicConfig(
        level=logging.INFO if di.is_main else logging.WARNING, format=f"%(asctime)s [rank {di.rank}] %(message)s"
    )
    run_dir = ""
    if di.is_main:
        run_dir = new_run_dir(tc.runs_root, "expression-" + os.path.basename(os.path.normpath(dc.root)))
        os.makedirs(os.path.join(run_dir, "checkpoints"))
        with open(os.path.join(run_dir, "config.json"), "w") as f:
            json.dump(cfg, f, indent=2)
        logging.getLogger().addHandler(logging.FileHandler(os.path.join(run_dir, "log.txt")))
        log.info("run %s, world %d, device %s", run_dir, di.world_size, di.device)
    dist.barrier()
    train, splits = make_loaders(dc, tc, di)
    model = ExpressionNet(mc).to(di.device)
    opt = torch.optim.SGD(model.parameters(), lr=tc.lr, momentum=0.9, nesterov=True, weight_decay=tc.weight_decay)
    total = tc.epochs * len(train)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, tc.lr, total_steps=total, pct_start=0.15)
    start, best = 0, -1.0
    if tc.resume:
        ck = load_checkpoint(tc.resume)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        start, best = ck["epoch"] + 1, ck["best"]
        if ck["sched"].get("total_steps") == total:
            sched.load_state_dict(ck["sched"])
        else:  # more epochs (or another world size) than the checkpointed run: the schedule is re-laid
            sched = torch.optim.lr_scheduler.OneCycleLR(
                opt, tc.lr, total_steps=total, pct_start=0.15, last_epoch=min(start * len(train), total) - 1
            )
        log.info("resumed from %s at epoch %d", tc.resume, start)
    if tc.resume and di.is_main:  # the resumed run's best weights stay the best until beaten
        prev_best = os.path.join(os.path.dirname(tc.resume), "best.pt")
        if os.path.exists(prev_best):
            import shutil

            shutil.copy(prev_best, os.path.join(run_dir, "checkpoints", "best.pt"))
    net = DDP(model) if di.enabled else model
    stats = StatsLog(run_dir) if di.is_main else None
    for epoch in range(start, tc.epochs):
        if isinstance(train.sampler, DistributedSampler):
            train.sampler.set_epoch(epoch)
        net.train()
        t0, tot, correct, n = time.time(), 0.0, 0, 0
        for x, y in tqdm(train, desc=f"epoch {epoch}", disable=not di.is_main, leave=False):
            x, y = x.to(di.device), y.to(di.device)
            logits = net(x)
            loss = F.cross_entropy(logits, y, label_smoothing=tc.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            tot += float(loss.detach()) * len(y)
            correct += int((logits.argmax(1) == y).sum())
            n += len(y)
        sums = dist.all_reduce_sum(torch.tensor([tot, correct, n], dtype=torch.float64))
        if di.is_main:
            val = evaluate(model, splits["val"], di.device)
            row = {
                "epoch": epoch,
                "loss": sums[0].item() / sums[2].item(),
                "train_acc": sums[1].item() / sums[2].item(),
                "val_acc": val["acc"],
                "val_macro_f1": val["macro_f1"],
                "lr": sched.get_last_lr()[0],
                "seconds": time.time() - t0,
            }
            stats.write(**row)
            log.info(
                "epoch %d loss %.3f train %.3f val %.3f (%.0fs)",
                epoch,
                row["loss"],
                row["train_acc"],
                val["acc"],
                row["seconds"],
            )
            state = {
                "epoch": epoch,
                "model": model.state_dict(),
                "opt": opt.state_dict(),
                "sched": sched.state_dict(),
                "best": max(best, val["acc"]),
                "config": cfg,
                "version": 1,
            }
            save_checkpoint(os.path.join(run_dir, "checkpoints", "last.pt"), **state)
            if val["acc"] > best:
                best = val["acc"]
                save_checkpoint(os.path.join(run_dir, "checkpoints", "best.pt"), **state)
        dist.barrier()
    if di.is_main:
        finish(run_dir, model, splits, mc, dc, tc, di.device)
    dist.cleanup()


def finish(run_dir: str, model, splits: dict, mc, dc, tc, device) -> None:
    ck = load_checkpoint(os.path.join(run_dir, "checkpoints", "best.pt"))
    model.load_state_dict(ck["model"])
    test = evaluate(model, splits["test"], device)
    plot_confusion(
        test["cm"],
        list(CLASSES),
        os.path.join(run_dir, "confusion_test.png"),
        f"FER2013 test: acc {test['acc']:.3f}, macro-F1 {test['macro_f1']:.3f}",
    )
    metrics = {
        "fer2013_test_accuracy": round(test["acc"], 4),
        "fer2013_test_macro_f1": round(test["macro_f1"], 4),
        "fer2013_val_accuracy": round(ck["best"], 4),
        "best_epoch": ck["epoch"],
        "test_size": int(len(splits["test"]["y"])),
        "flip_tta": True,
    }
    with open(os.path.join(run_dir, "metrics.json"), "w") as f:
        json.dump({**metrics, "confusion": test["cm"].tolist()}, f, indent=2)
    log.info("test: %s", metrics)
    if tc.export_to:
        card = ModelCard(
            architecture="ExpressionNet",
            config=dataclasses.asdict(mc),
            classes=list(CLASSES),
            input={"size": dc.size, "channels": 1, "mean": 0.5, "std": 0.5, "alignment": "backend.align (template68)"},
            data="FER2013 (../shared/data/fer2013 train split, 25,117 faces): non-commercial research use only; "
            "these weights inherit that restriction.",
            metrics=metrics,
            reproduce="python -m training.train_expression "
            + " ".join(
                f"--{k.replace('_', '-')} {v}" for k, v in [("epochs", tc.epochs), ("lr", tc.lr), ("seed", tc.seed)]
            ),
        )
        save_model(model.cpu(), card, tc.export_to)
        log.info("exported %s.safetensors", tc.export_to)


if __name__ == "__main__":
    main()
