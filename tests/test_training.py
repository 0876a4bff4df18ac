"""Training package: configs, run folders, metrics, transfer surgery, and DDP with 2 CPU processes (gloo)."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from training.data import DATASETS, find_dataset, load_dataset, subject_folds, subject_split
from training.metrics import METRICS, average_normalized_rank, calc_metric, calc_metrics, confusion, macro_f1
from training.runs import new_run_dir

from .conftest import ROOT, shared_path


def dry_run(script: str, *args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", f"training.{script}", "--dry-run", *args]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_dry_run_prints_the_resolved_config():
    cfg = json.loads(dry_run("train_expression", "--epochs", "3", "--model-widths", "16", "32").stdout)
    assert cfg["train"]["epochs"] == 3 and cfg["model"]["widths"] == [16, 32]
    assert cfg["data"]["dataset"] == "fer2013" and cfg["data"]["root"] == find_dataset("fer2013").root
    gan = json.loads(dry_run("train_gan", "--lambdas", "1", "0.001", "1", "--seed", "7").stdout)
    assert gan["train"]["lambdas"] == [1.0, 0.001, 1.0] and gan["train"]["seed"] == 7
    # One run config for every script: the same run fields (seed, device, resume, ...) in both.
    from training.config import RunConfig

    run_fields = [f.name for f in dataclasses.fields(RunConfig)]
    assert all(k in cfg["train"] and k in gan["train"] for k in run_fields)


def test_datasets_are_chosen_by_name(tmp_path):
    assert {"fer2013", "ckplus", "ckplus_pairs", "ferg", "characters"} <= set(DATASETS)
    cfg = json.loads(dry_run("train_expression", "--dataset", "ferg", "--data-root", str(tmp_path)).stdout)
    assert cfg["data"]["dataset"] == "ferg" and cfg["data"]["root"] == str(tmp_path)
    for bad, needle in (("nope", "unknown crops data set 'nope'"), ("ckplus_pairs", "unknown crops data set")):
        r = dry_run("train_expression", "--dataset", bad)
        assert r.returncode != 0 and needle in r.stderr and "fer2013" in r.stderr, r.stderr
    r = dry_run("train_expression", "--dataset", "characters")
    assert r.returncode != 0 and "no train/val/test splits" in r.stderr
    r = dry_run("train_gan", "--dataset", "fer2013")
    assert r.returncode != 0 and "unknown pairs data set 'fer2013'" in r.stderr
    with pytest.raises(ValueError, match="has no split 'train'"):
        load_dataset("characters", "train")


def test_subject_splits_never_share_a_subject():
    from training.data import Item

    items = [Item(f"{s}/{i}.png", i % 7, s) for s in [f"S{k:03d}" for k in range(23)] for i in range(3)]
    parts = {sp: subject_split(items, sp) for sp in ("train", "val", "test")}
    subjects = {sp: {i.subject for i in p} for sp, p in parts.items()}
    assert not (subjects["train"] & subjects["val"]) and not (subjects["train"] & subjects["test"])
    assert not subjects["val"] & subjects["test"]
    assert sum(len(p) for p in parts.values()) == len(items) == len(subject_split(items, "all"))


def test_a_dataset_loads_by_name_through_the_engine(tmp_path, astronaut_path):
    """A FERG-layout folder holding a real photo: listed, aligned by the real engine, cached, by name."""
    import shutil

    for sub in ("ann/ann_joy", "ann/ann_anger", "bob/bob_joy"):
        (tmp_path / "ferg" / sub).mkdir(parents=True)
        shutil.copy(astronaut_path, tmp_path / "ferg" / sub / "a.png")
    data = load_dataset("ferg", root=str(tmp_path / "ferg"), size=48, cache_dir=str(tmp_path / "cache"))
    assert data["x"].shape == (3, 48, 48) and data["x"].dtype == np.uint8 and data["detected"].all()
    assert list(data["subject"]) == ["ann", "ann", "bob"] and len(os.listdir(tmp_path / "cache")) == 1
    # the aligned landmarks sit where the alignment put them: the eye corners on the template's
    assert data["lm"].shape == (3, 68, 2) and 0.15 < data["lm"][0, 36, 0] < 0.35 < 0.65 < data["lm"][0, 45, 0] < 0.85
    again = load_dataset("ferg", root=str(tmp_path / "ferg"), size=48, cache_dir=str(tmp_path / "cache"))
    assert np.array_equal(again["x"], data["x"])


def test_metrics_by_name():
    y, p = np.array([0, 0, 1, 1, 2]), np.array([0, 1, 1, 1, 0])
    m = calc_metrics(("accuracy", "macro_f1", "confusion"), y_true=y, y_pred=p, n_classes=3)
    assert m["accuracy"] == pytest.approx(3 / 5) and m["macro_f1"] == macro_f1(confusion(y, p, 3))
    assert m["confusion"].tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]
    d, rel = np.array([[0, 1, 2.0]]), np.array([[False, True, True]])
    assert calc_metric("anr", dist=d, relevant=rel) == pytest.approx(average_normalized_rank(d, rel))
    img = (np.arange(64 * 64).reshape(64, 64) % 251).astype(np.uint8)
    assert calc_metric("ssim", generated=img, real=img) == pytest.approx(1.0)
    assert calc_metric("psnr", generated=img // 2, real=img) < 20
    assert {"accuracy", "macro_f1", "confusion", "anr", "ssim", "psnr"} <= set(METRICS)
    with pytest.raises(ValueError, match="unknown metric"):
        calc_metric("fid")
    with pytest.raises(ValueError, match="needs relevant"):
        calc_metric("anr", dist=d)


def test_run_folders_never_overwrite(tmp_path):
    a, b = new_run_dir(str(tmp_path), "x"), new_run_dir(str(tmp_path), "x")
    assert a != b and os.path.basename(a).startswith("00000-") and os.path.basename(b).startswith("00001-")


def test_average_normalized_rank():
    rel = np.array([[True, True, False, False, False]])
    assert average_normalized_rank(np.array([[0, 1, 2, 3, 4.0]]), rel)[0] == 0  # relevant first: perfect
    worst = average_normalized_rank(np.array([[4, 3, 2, 1, 0.0]]), rel)[0]
    assert worst == pytest.approx((4 + 5 - 3) / 10)  # relevant last
    rng = np.random.default_rng(0)
    r = rng.random((2000, 50)) < 0.2
    chance = average_normalized_rank(rng.random((2000, 50)), r)
    # Random ranking: E[ANR] = (1 - N_rel / N) / 2, i.e. 0.4 here (0.5 only when relevant items are rare).
    assert np.nanmean(chance) == pytest.approx(0.5 * (1 - 0.2), abs=0.02)


def test_macro_f1_and_folds():
    cm = confusion(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]), 2)
    assert macro_f1(cm) == pytest.approx((2 / 3 + 0.8) / 2)
    folds = subject_folds([f"S{i:03d}" for i in range(25)] * 2, 10)
    assert set(folds.values()) == set(range(10)) and len(folds) == 25


def test_transfer_freezes_the_convolutions_and_retrains_fc1():
    from backend.models import ExpressionNet, ExpressionNetConfig
    from training.transfer import TransferConfig, transfer

    torch.manual_seed(0)
    human = ExpressionNet(ExpressionNetConfig(input_size=48, widths=(8, 16)))
    x = np.random.default_rng(0).integers(0, 255, (40, 48, 48), dtype=np.uint8)
    y = np.arange(40) % 7
    net = transfer(human, x, y, TransferConfig(epochs=2, batch_size=16))
    for (k, a), b in zip(human.state_dict().items(), net.state_dict().values()):
        if k.startswith("features"):
            assert torch.equal(a, b), k
    assert not torch.equal(human.fc1[2].weight, net.fc1[2].weight)
    assert not torch.equal(human.fc2[1].weight, net.fc2[1].weight)


def test_ddp_with_two_cpu_processes(tmp_path):
    """torchrun, 2 gloo processes, a tiny FER2013 subset: both ranks train, rank 0 writes the run folder."""
    shared_path("fer2013")
    tiny = ["--data-limit", "128", "--data-workers", "0", "--batch-size", "16", "--model-widths", "8", "16",
            "--runs-root", str(tmp_path), "--data-cache-dir", str(tmp_path / "cache")]  # fmt: skip
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
           "-m", "training.train_expression", "--epochs", "1", "--threads", "1", *tiny,
           "--export-to", str(tmp_path / "export" / "m")]  # fmt: skip
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    run = next(d for d in os.listdir(tmp_path) if d.startswith("00000-"))
    files = os.listdir(tmp_path / run)
    assert {"config.json", "stats.jsonl", "metrics.json", "confusion_test.png", "checkpoints"} <= set(files)
    assert len(open(tmp_path / run / "stats.jsonl").readlines()) == 1
    assert "[rank 1]" not in open(tmp_path / run / "log.txt").read()
    from backend.models import load_model

    m = load_model(str(tmp_path / "export" / "m.safetensors"), "expression", torch.device("cpu"))
    assert m.card.metrics["test_size"] == 128
    # Resume one more epoch from the checkpoint (single process).
    resume = ["--resume", str(tmp_path / run / "checkpoints" / "last.pt")]
    cmd = [sys.executable, "-m", "training.train_expression", "--epochs", "2", *tiny, *resume,
           "--class-balance", "0.5", "--augment", "strong", "--select", "balanced"]  # fmt: skip
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    second = sorted(d for d in os.listdir(tmp_path) if d.startswith("0000"))[-1]
    rows = [json.loads(x) for x in open(tmp_path / second / "stats.jsonl")]
    assert [row["epoch"] for row in rows] == [1]


def test_class_balance_and_strong_augmentation():
    from training.data import CropDataset, augment_strong
    from training.loops.expression import TrainConfig

    y = np.array([0] * 90 + [1] * 10)
    assert TrainConfig().class_weights(y, 3) is None
    w = TrainConfig(class_balance=1.0).class_weights(y, 3).numpy()
    assert w[1] == pytest.approx(9 * w[0]) and w[2] == 0 and w[y].mean() == pytest.approx(1.0)
    rng = np.random.RandomState(0)
    img = np.tile(np.linspace(0, 1, 48, dtype=np.float32), (48, 1))
    outs = np.stack([augment_strong(img, rng) for _ in range(50)])
    assert outs.shape == (50, 48, 48) and outs.dtype == np.float32 and outs.min() >= 0 and outs.max() <= 1
    assert np.abs(outs - img).mean() > 0.02  # it does change the crops
    with pytest.raises(ValueError):
        CropDataset(outs, y[:50], augment="medium")


def test_loaders_map_every_layout_onto_the_canonical_labels(tmp_path):
    import cv2

    from backend.models import CLASSES
    from training.data import list_class_folders, list_ferg, read_fer_csv

    rows = ["emotion,pixels,Usage"] + [
        f"{e},{' '.join(['7'] * 2304)},{u}" for e, u in ((3, "Training"), (6, "PublicTest"), (0, "Training"))
    ]
    (tmp_path / "fer2013.csv").write_text("\n".join(rows))
    x, y = read_fer_csv(str(tmp_path / "fer2013.csv"), usage="Training")
    assert x.shape == (2, 48, 48) and [CLASSES[i] for i in y] == ["joy", "anger"]
    img = np.zeros((48, 48), np.uint8)
    for sub in ("toony/toony_joy", "toony/toony_sadness", "toony/toony_contempt"):
        (tmp_path / "ferg" / sub).mkdir(parents=True)
        cv2.imwrite(str(tmp_path / "ferg" / sub / "a.png"), img)
    items = list_ferg(str(tmp_path / "ferg"))
    assert sorted(CLASSES[i.label] for i in items) == ["joy", "sadness"] and items[0].subject == "toony"
    for sub in ("happy", "sad", "angry", "weird"):
        (tmp_path / "cf" / sub).mkdir(parents=True)
        cv2.imwrite(str(tmp_path / "cf" / sub / "a.png"), img)
    assert sorted(CLASSES[i.label] for i in list_class_folders(str(tmp_path / "cf"))) == ["anger", "joy", "sadness"]
