"""CK+ 10-fold subject-independent accuracy of the human expression network (fine-tuned per fold).

    python -m training.evaluate_ckplus --human-model runs/export/expression_human [--epochs 15] [--out docs/evaluation]

Subjects are split into 10 folds by id (``training.data.subject_folds``); for each fold the FER2013 network is
fine-tuned on the other nine and tested on it, so no subject is on both sides. Seven canonical classes:
CK+'s contempt has no canonical class and is left out (its 54 frames are dropped).
"""

from __future__ import annotations

import argparse
import json
import logging
import os

import numpy as np
import torch

from backend.models import CLASSES, load_model

from .data import SHARED_DATA, load_dataset, subject_folds
from .loops.expression import finetune, predict
from .metrics import calc_metric, calc_metrics, plot_confusion

log = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--human-model", required=True)
    ap.add_argument("--data", default=os.path.join(SHARED_DATA, "ckplus48"))
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--folds", type=int, default=10)
    ap.add_argument("--out", default=os.path.join("docs", "evaluation"))
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    human = load_model(args.human_model, "expression", torch.device("cpu"))
    size = int(human.card.input["size"])
    data = load_dataset("ckplus", "all", root=args.data, size=size, workers=1)
    folds = subject_folds(list(data["subject"]), args.folds)
    fold_of = np.array([folds[s] for s in data["subject"]])
    preds = np.zeros(len(data["y"]), dtype=np.int64)
    n = len(CLASSES)
    zero_shot = calc_metric(
        "accuracy",
        y_true=data["y"],
        y_pred=predict(human.module, data["x"], torch.device("cpu")).argmax(1),
        n_classes=n,
    )
    per_fold = []
    for k in range(args.folds):
        tr, te = fold_of != k, fold_of == k
        assert not set(data["subject"][tr]) & set(data["subject"][te])
        net = finetune(human.module, data["x"][tr], data["y"][tr], args.epochs, args.lr, seed=k)
        preds[te] = predict(net, data["x"][te], torch.device("cpu")).argmax(1)
        per_fold.append(calc_metric("accuracy", y_true=data["y"][te], y_pred=preds[te], n_classes=n))
        log.info(
            "fold %d: %d test frames of %d subjects, accuracy %.3f",
            k,
            te.sum(),
            len(set(data["subject"][te])),
            per_fold[-1],
        )
    m = calc_metrics(("confusion", "accuracy", "macro_f1"), y_true=data["y"], y_pred=preds, n_classes=n)
    cm = m["confusion"]
    os.makedirs(args.out, exist_ok=True)
    plot_confusion(
        cm,
        list(CLASSES),
        os.path.join(args.out, "confusion_ckplus_10fold.png"),
        f"CK+ 10-fold subject-independent: acc {m['accuracy']:.3f}",
    )
    res = {
        "accuracy": m["accuracy"],
        "macro_f1": m["macro_f1"],
        "per_fold": per_fold,
        "fold_mean": float(np.mean(per_fold)),
        "fold_std": float(np.std(per_fold)),
        "zero_shot_accuracy": zero_shot,
        "frames": len(data["y"]),
        "subjects": len(folds),
        "epochs": args.epochs,
        "contempt": "left out (no canonical class)",
        "confusion": cm.tolist(),
    }
    with open(os.path.join(args.out, "ckplus_10fold.json"), "w") as f:
        json.dump(res, f, indent=1)
    print(json.dumps({k: v for k, v in res.items() if k != "confusion"}))


if __name__ == "__main__":
    main()
