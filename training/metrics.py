"""Classification metrics and plots."""

from __future__ import annotations

import numpy as np


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n: int) -> np.ndarray:
    cm = np.zeros((n, n), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return cm


def accuracy(cm: np.ndarray) -> float:
    return float(np.trace(cm) / max(cm.sum(), 1))


def macro_f1(cm: np.ndarray, labels: list[int] | None = None) -> float:
    """Mean F1 over ``labels`` (default: classes present in the ground truth)."""
    tp = np.diag(cm).astype(float)
    prec = tp / np.maximum(cm.sum(axis=0), 1)
    rec = tp / np.maximum(cm.sum(axis=1), 1)
    f1 = np.where(prec + rec > 0, 2 * prec * rec / np.maximum(prec + rec, 1e-12), 0.0)
    idx = labels if labels is not None else np.nonzero(cm.sum(axis=1))[0]
    return float(f1[idx].mean())


def plot_confusion(cm: np.ndarray, classes: list[str], path: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(6, 5.2))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(len(classes)):
        for j in range(len(classes)):
            ax.text(
                j,
                i,
                f"{norm[i, j]:.2f}\n({cm[i, j]})",
                ha="center",
                va="center",
                fontsize=7,
                color="white" if norm[i, j] > 0.5 else "black",
            )
    ax.set_title(title)
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def average_normalized_rank(dist: np.ndarray, relevant: np.ndarray) -> np.ndarray:
    """ANR per query (Mueller et al. 2001, as used by DeepExpr): for a query whose N database items include
    N_rel relevant ones at ranks R_i (1-based, ascending distance), ANR = (sum R_i - N_rel(N_rel+1)/2) / (N N_rel).
    0 is perfect; a random ranking gives (1 - N_rel/N) / 2 on average (0.5 only when N_rel << N; about 0.43
    with 7 balanced classes). ``dist`` (Q, N) distances; ``relevant`` (Q, N) booleans."""
    q, n = dist.shape
    order = np.argsort(dist, axis=1, kind="stable")
    ranks = np.empty_like(order)
    ranks[np.arange(q)[:, None], order] = np.arange(1, n + 1)[None]
    n_rel = relevant.sum(axis=1)
    s = np.where(relevant, ranks, 0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (s - n_rel * (n_rel + 1) / 2) / (n * n_rel)
