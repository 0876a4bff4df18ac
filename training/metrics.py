"""Metrics by name, shared by training and evaluation (the idea of StyleGAN3's ``metrics/metric_main.py``).

Training scripts and evaluation scripts call the same function by name: ``calc_metric("macro_f1", y_true=...,
y_pred=..., n_classes=7)``. A metric takes its inputs by keyword; ``calc_metric`` passes each metric only the
inputs it names, so one bag of inputs serves several metrics (``calc_metrics``). Inputs by family:

    labels    y_true, y_pred (class indices), n_classes          accuracy, macro_f1, confusion
    ranking   dist (Q, N) distances, relevant (Q, N) booleans    anr (per query)
    images    generated, real (uint8 gray images, same shape)    ssim, psnr

Adding a metric: one function in this file with ``@register_metric`` above it. The confusion-matrix helpers
(``confusion``, ``accuracy``, ``macro_f1``) and ``plot_confusion`` stay importable as plain functions.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

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


# ------------------------------------------------------------------------------------------ registry
@dataclass(frozen=True)
class Metric:
    name: str
    fn: Callable[..., Any]
    inputs: tuple[str, ...]  # the keyword arguments it takes
    about: str  # one line: what it measures, and its range


METRICS: dict[str, Metric] = {}


def register_metric(name: str, about: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: make ``fn`` callable by ``name`` (``calc_metric``)."""

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        if name in METRICS:
            raise ValueError(f"metric {name!r} registered twice")
        METRICS[name] = Metric(name, fn, tuple(inspect.signature(fn).parameters), about)
        return fn

    return deco


def calc_metric(name: str, **inputs: Any) -> Any:
    """The metric ``name`` on the inputs it takes (others are ignored); a clear error for unknown names and
    missing inputs."""
    if name not in METRICS:
        raise ValueError(f"unknown metric {name!r}; known: {', '.join(sorted(METRICS))}")
    m = METRICS[name]
    required = [p.name for p in inspect.signature(m.fn).parameters.values() if p.default is inspect.Parameter.empty]
    missing = [k for k in required if k not in inputs]
    if missing:
        raise ValueError(f"metric {name!r} needs {', '.join(missing)}")
    return m.fn(**{k: v for k, v in inputs.items() if k in m.inputs})


def calc_metrics(names: Iterable[str], **inputs: Any) -> dict[str, Any]:
    """Several metrics on one bag of inputs: {name: value}."""
    return {n: calc_metric(n, **inputs) for n in names}


@register_metric("confusion", "(n_classes, n_classes) counts, rows true, columns predicted")
def _confusion(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    return confusion(y_true, y_pred, n_classes)


@register_metric("accuracy", "fraction of predictions equal to the truth, 0..1")
def _accuracy(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> float:
    return accuracy(confusion(y_true, y_pred, n_classes))


@register_metric("macro_f1", "mean F1 over the classes present in the truth, 0..1")
def _macro_f1(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> float:
    return macro_f1(confusion(y_true, y_pred, n_classes))


@register_metric("anr", "average normalized rank per query, 0 perfect (DeepExpr's retrieval measure)")
def _anr(dist: np.ndarray, relevant: np.ndarray) -> np.ndarray:
    return average_normalized_rank(dist, relevant)


@register_metric("ssim", "structural similarity of a generated to a real 8-bit gray image (Wang et al. 2004)")
def ssim(generated: np.ndarray, real: np.ndarray) -> float:
    """scikit-image ``structural_similarity`` with data_range 255, gaussian_weights, sigma 1.5,
    use_sample_covariance False (the settings of Wang et al. 2004, as the GAN papers report)."""
    from skimage.metrics import structural_similarity

    return float(
        structural_similarity(
            real, generated, data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
        )
    )


@register_metric("psnr", "peak signal-to-noise ratio in dB of a generated to a real 8-bit image")
def psnr(generated: np.ndarray, real: np.ndarray) -> float:
    from skimage.metrics import peak_signal_noise_ratio

    return float(peak_signal_noise_ratio(real, generated, data_range=255))
