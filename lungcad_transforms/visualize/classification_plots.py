"""Confusion-matrix and ROC plots for binary classifiers (tumour / no tumour)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from lungcad_transforms.utils.atomic import atomic_file

__all__ = ["save_confusion_matrix_png", "save_roc_png"]


def _figure(size: tuple[float, float]):
    # the object API with the Agg canvas: no pyplot global state, no display needed
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=150)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: str | os.PathLike) -> Path:
    path = Path(path)
    fig.tight_layout()
    with atomic_file(path) as tmp:
        fig.savefig(tmp, format="png")
    return path


def save_confusion_matrix_png(
    confusion: Sequence[Sequence[int]] | np.ndarray,
    path: str | os.PathLike,
    class_names: Sequence[str] = ("no tumour", "tumour"),
    title: str = "",
) -> Path:
    """Plot a confusion matrix (rows: true class, columns: predicted class) as a PNG.

    Each cell shows its count and its share of the true class (row-normalised), so the diagonal
    reads as specificity and sensitivity for a binary matrix ``[[tn, fp], [fn, tp]]``.

    Args:
        confusion: square matrix of counts, ``confusion[i][j]`` = cases of true class ``i`` predicted ``j``.
        path: the PNG to write (atomically; parent folders created).
        class_names: one name per class, in matrix order.
        title: plot title.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        ValueError: the matrix is not square, has negative counts, or does not match ``class_names``.

    Examples:
        >>> save_confusion_matrix_png([[40, 2], [5, 30]], "cm.png", title="MR+PET")  # doctest: +SKIP
    """
    counts = np.asarray(confusion, dtype=np.int64)
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1]:
        raise ValueError(f"confusion matrix must be square, got shape {counts.shape}")
    if counts.shape[0] != len(class_names):
        raise ValueError(f"{counts.shape[0]} classes in the matrix but {len(class_names)} class names")
    if (counts < 0).any():
        raise ValueError("confusion matrix has negative counts")
    totals = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, totals, out=np.zeros(counts.shape, dtype=float), where=totals > 0)

    fig = _figure((4.6, 4.0))
    ax = fig.add_subplot(1, 1, 1)
    image = ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the true class")
    for i in range(counts.shape[0]):
        for j in range(counts.shape[1]):
            colour = "white" if share[i, j] > 0.5 else "black"
            ax.text(j, i, f"{counts[i, j]}\n({share[i, j]:.0%})", ha="center", va="center", color=colour)
    ticks = np.arange(len(class_names))
    ax.set_xticks(ticks, labels=list(class_names))
    ax.set_yticks(ticks, labels=list(class_names))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    return _save(fig, path)


def save_roc_png(
    curves: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    path: str | os.PathLike,
    title: str = "",
) -> Path:
    """Plot one ROC curve per entry of ``curves`` on one set of axes, each labelled with its AUC.

    Args:
        curves: ``{name: (labels, probs)}``; labels are 0 / 1, probs the scores of class 1. Every
            entry needs both classes present.
        path: the PNG to write (atomically; parent folders created).
        title: plot title.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        ValueError: no curves, labels and probs of different lengths, labels not 0 / 1, or one class absent.

    Examples:
        >>> save_roc_png({"MR": ([0, 1, 1], [0.2, 0.7, 0.4])}, "roc.png")  # doctest: +SKIP
    """
    from sklearn.metrics import roc_auc_score, roc_curve

    if not curves:
        raise ValueError("no ROC curves to plot")
    fig = _figure((5.0, 4.6))
    ax = fig.add_subplot(1, 1, 1)
    for name, (labels, probs) in curves.items():
        y = np.asarray(labels).ravel()
        p = np.asarray(probs, dtype=float).ravel()
        if y.shape != p.shape:
            raise ValueError(f"{name}: {y.size} labels but {p.size} probabilities")
        if not np.isin(y, (0, 1)).all():
            raise ValueError(f"{name}: labels must be 0 or 1")
        if np.unique(y).size < 2:
            raise ValueError(f"{name}: a ROC curve needs both classes, got only class {int(y[0])}")
        fpr, tpr, _ = roc_curve(y, p)
        ax.plot(fpr, tpr, lw=2, label=f"{name} (AUC {roc_auc_score(y, p):.3f})")
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="chance")
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(0.0, 1.0)
    ax.set_aspect("equal")
    ax.grid(True, alpha=0.4)
    ax.set_xlabel("1 - specificity (false-positive rate)")
    ax.set_ylabel("sensitivity (true-positive rate)")
    ax.set_title(title)
    ax.legend(loc="lower right")
    return _save(fig, path)
