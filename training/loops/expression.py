"""The human expression network's training loop (FER2013 by default), evaluation and export; and the per-fold
fine-tuning that ``training.evaluate_ckplus`` uses.

SGD with Nesterov momentum and a one-cycle schedule, label-smoothed cross-entropy, augmentations in
``training.data.CropDataset``; best checkpoint by validation accuracy; test metrics with flip TTA at the end.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler
from tqdm import tqdm

from backend.models import CLASSES, ExpressionNet, ExpressionNetConfig, ModelCard, save_model

from .. import dist
from ..config import RunConfig, field
from ..data import SPLITS, CropDataset, find_dataset, load_dataset, to_input
from ..losses import classification_loss
from ..metrics import calc_metrics, plot_confusion
from ..runs import StatsLog, load_checkpoint, save_checkpoint, seed_everything, start_run, worker_init

log = logging.getLogger(__name__)


@dataclass
class DataConfig:
    dataset: str = field("fer2013", "data set by name (training.data.DATASETS): fer2013 | ckplus | ferg", "--dataset")
    root: str = field("", "where the data set is (empty: its usual place, e.g. ../shared/data/fer2013)")
    size: int = field(48, "aligned crop side in pixels")
    limit: int = field(0, "use only the first N training images per split (0: all); for smoke tests")
    workers: int = field(2, "processes for building the crop cache and for data loading")
    cache_dir: str = field("cache", "where aligned crops are cached (ignored by git)")

    def resolve(self) -> DataConfig:
        """The data set's usual root filled in; an error for a name that is not a crops data set with
        train/val/test splits."""
        spec = find_dataset(self.dataset, kind="crops")
        if not set(SPLITS) <= set(spec.splits):
            raise ValueError(f"data set {self.dataset!r} has no train/val/test splits (it has: {spec.splits})")
        return dataclasses.replace(self, root=self.root or spec.root)


@dataclass
class TrainConfig:
    epochs: int = field(30, "passes over the training split")
    batch_size: int = field(128, "per process")
    lr: float = field(0.05, "peak SGD learning rate (one-cycle schedule)")
    weight_decay: float = field(5e-4, "L2 on all weights")
    label_smoothing: float = field(0.1, "cross-entropy label smoothing")
    init: str = field("", "start from these ExpressionNet weights (.safetensors) instead of random ones: fine-tuning")
    class_balance: float = field(
        0.0, "loss weight of a class = (its share of the training split) ** -b: 0 none, 0.5 square root, 1 inverse"
    )
    augment: str = field("basic", "basic | strong (adds illumination, blur/low resolution, noise, occlusion bars)")
    select: str = field("acc", "validation measure that keeps the best checkpoint: acc | balanced (mean recall)")

    def class_weights(self, y: np.ndarray, n_classes: int) -> torch.Tensor | None:
        """Per-class loss weights (mean 1 over the training samples), or None without balancing."""
        if not self.class_balance:
            return None
        share = np.bincount(y, minlength=n_classes) / len(y)
        w = np.where(share > 0, np.maximum(share, 1e-12) ** -self.class_balance, 0.0)
        return torch.tensor(w / (w[y].mean()), dtype=torch.float32)


def make_loaders(dc: DataConfig, tc: TrainConfig, rc: RunConfig, di: dist.DistInfo) -> tuple[DataLoader, dict]:
    splits = {
        split: load_dataset(
            dc.dataset,
            split,
            root=dc.root,
            size=dc.size,
            cache_dir=dc.cache_dir,
            workers=dc.workers if di.is_main else 1,
            limit=dc.limit,
        )
        for split in SPLITS
    }
    train_ds = CropDataset(splits["train"]["x"], splits["train"]["y"], augment=tc.augment)
    sampler = DistributedSampler(train_ds, di.world_size, di.rank, shuffle=True, seed=rc.seed) if di.enabled else None
    g = torch.Generator().manual_seed(rc.seed + di.rank)
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
        t = to_input(x[i : i + 512]).to(device)
        p = F.softmax(model(t), 1)
        if flip_tta:
            p = (p + F.softmax(model(torch.flip(t, dims=[3])), 1)) / 2
        out.append(p.cpu().numpy())
    return np.concatenate(out)


def evaluate(model: torch.nn.Module, data: dict, device: torch.device) -> dict:
    probs = predict(model, data["x"], device)
    m = calc_metrics(
        ("accuracy", "macro_f1", "confusion"), y_true=data["y"], y_pred=probs.argmax(1), n_classes=len(CLASSES)
    )
    cm = m["confusion"]
    recall = np.diag(cm) / np.maximum(cm.sum(axis=1), 1)
    present = cm.sum(axis=1) > 0
    return {"acc": m["accuracy"], "macro_f1": m["macro_f1"], "balanced": float(recall[present].mean()), "cm": cm}


def training_loop(dc: DataConfig, mc: ExpressionNetConfig, tc: TrainConfig, rc: RunConfig, cfg: dict) -> str:
    """Train (resuming from ``rc.resume`` if given), keep the best checkpoint by validation accuracy, then test
    it and export it (``rc.export_to``). Returns the run folder ("" on ranks other than 0)."""
    di, run_dir = start_run(rc, cfg, "expression-" + os.path.basename(os.path.normpath(dc.root)))
    train, splits = make_loaders(dc, tc, rc, di)
    seed_everything(rc.seed, di.rank)  # after the data: building crops draws from torch's generator
    model = ExpressionNet(mc)
    if tc.init:
        from safetensors.torch import load_file

        model.load_state_dict(load_file(tc.init), strict=True)
        log.info("initialised from %s", tc.init)
    model = model.to(di.device)
    weight = tc.class_weights(splits["train"]["y"], len(CLASSES))
    weight = None if weight is None else weight.to(di.device)
    opt = torch.optim.SGD(model.parameters(), lr=tc.lr, momentum=0.9, nesterov=True, weight_decay=tc.weight_decay)
    total = tc.epochs * len(train)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, tc.lr, total_steps=total, pct_start=0.15)
    start, best = 0, -1.0
    if rc.resume:
        ck = load_checkpoint(rc.resume)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        start, best = ck["epoch"] + 1, ck["best"]
        if ck["sched"].get("total_steps") == total:
            sched.load_state_dict(ck["sched"])
        else:  # more epochs (or another world size) than the checkpointed run: the schedule is re-laid
            sched = torch.optim.lr_scheduler.OneCycleLR(
                opt, tc.lr, total_steps=total, pct_start=0.15, last_epoch=min(start * len(train), total) - 1
            )
        log.info("resumed from %s at epoch %d", rc.resume, start)
    if rc.resume and di.is_main:  # the resumed run's best weights stay the best until beaten
        prev_best = os.path.join(os.path.dirname(rc.resume), "best.pt")
        if os.path.exists(prev_best):
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
            loss = classification_loss(logits, y, tc.label_smoothing, weight)
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
                "val_balanced": val["balanced"],
                "lr": sched.get_last_lr()[0],
                "seconds": time.time() - t0,
            }
            stats.write(**row)
            log.info(
                "epoch %d loss %.3f train %.3f val %.3f balanced %.3f (%.0fs)",
                epoch,
                row["loss"],
                row["train_acc"],
                val["acc"],
                val["balanced"],
                row["seconds"],
            )
            measure = val["balanced"] if tc.select == "balanced" else val["acc"]
            state = {
                "epoch": epoch,
                "model": model.state_dict(),
                "opt": opt.state_dict(),
                "sched": sched.state_dict(),
                "best": max(best, measure),
                "config": cfg,
                "version": 1,
            }
            save_checkpoint(os.path.join(run_dir, "checkpoints", "last.pt"), **state)
            if measure > best:
                best = measure
                save_checkpoint(os.path.join(run_dir, "checkpoints", "best.pt"), **state)
        dist.barrier()
    if di.is_main:
        finish(run_dir, model, splits, mc, dc, tc, rc, di.device)
    dist.cleanup()
    return run_dir


def finish(
    run_dir: str,
    model: torch.nn.Module,
    splits: dict,
    mc: ExpressionNetConfig,
    dc: DataConfig,
    tc: TrainConfig,
    rc: RunConfig,
    device: torch.device,
) -> None:
    """Test the best checkpoint (metrics.json, confusion plot) and export it if asked."""
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
        f"fer2013_val_{'balanced_accuracy' if tc.select == 'balanced' else 'accuracy'}": round(ck["best"], 4),
        "best_epoch": ck["epoch"],
        "test_size": int(len(splits["test"]["y"])),
        "flip_tta": True,
    }
    with open(os.path.join(run_dir, "metrics.json"), "w") as f:
        json.dump({**metrics, "confusion": test["cm"].tolist()}, f, indent=2)
    log.info("test: %s", metrics)
    if rc.export_to:
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
                f"--{k.replace('_', '-')} {v}"
                for k, v in dataclasses.asdict(tc).items()
                if v != getattr(TrainConfig, k) or k in ("epochs", "lr")
            )
            + f" --seed {rc.seed}",
        )
        save_model(model.cpu(), card, rc.export_to)
        log.info("exported %s.safetensors", rc.export_to)


def finetune(net: ExpressionNet, x: np.ndarray, y: np.ndarray, epochs: int, lr: float, seed: int) -> ExpressionNet:
    """A copy of ``net`` fine-tuned on crops (x, y): SGD, cosine schedule, batch 64, augmentations."""
    seed_everything(seed)
    net = copy.deepcopy(net)
    ds = CropDataset(x, y, augment=True)
    dl = DataLoader(ds, batch_size=64, shuffle=True, drop_last=False, generator=torch.Generator().manual_seed(seed))
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs * len(dl))
    for _ in range(epochs):
        net.train()
        for xb, yb in dl:
            loss = classification_loss(net(xb), yb, 0.1)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    return net.eval()
