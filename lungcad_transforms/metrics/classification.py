"""Binary classification metrics: per-patient verdicts, the usual rates, ROC-AUC and bootstrap intervals.

The PET/CT and MR/PET classifiers report the same figures, per slice and per patient: accuracy,
sensitivity (recall), specificity, precision, ROC-AUC and the confusion matrix, each with a
percentile-bootstrap confidence interval, and a paired bootstrap test of the AUC difference of two models.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = [
    "CLASSIFICATION_METRICS",
    "PATIENT_RULES",
    "aggregate_by_patient",
    "binary_classification_report",
    "bootstrap_ci",
    "paired_bootstrap_auc_difference",
    "roc_auc",
]


def _arrays(labels: Sequence[Any], probs: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels).astype(np.int64).ravel()
    p = np.asarray(probs, dtype=np.float64).ravel()
    if y.shape != p.shape:
        raise ValueError(f"labels ({y.size}) and probabilities ({p.size}) differ in length")
    if y.size and not np.isin(y, (0, 1)).all():
        raise ValueError(f"labels must be 0 or 1, got {sorted(set(y.tolist()))}")
    if not np.isfinite(p).all():
        raise ValueError("probabilities hold NaN or infinite values")
    return y, p


def roc_auc(labels: Sequence[Any], probs: Sequence[Any]) -> float:
    """Area under the ROC curve (ties count one half); NaN when only one class is present.

    Via the Mann-Whitney U statistic, which equals MONAI's ``compute_roc_auc`` but is vectorised
    (the bootstrap calls it thousands of times).

    Args:
        labels: 0/1 ground truth.
        probs: score of class 1.
    """
    from scipy.stats import rankdata

    y, p = _arrays(labels, probs)
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(p)  # mid-ranks: ties count one half
    u = ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def _ratio(num: int, den: int) -> float:
    return float(num) / den if den else float("nan")


def _rates(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, Any]:
    pred = (p >= threshold).astype(np.int64)
    tp = int(((pred == 1) & (y == 1)).sum())
    tn = int(((pred == 0) & (y == 0)).sum())
    fp = int(((pred == 1) & (y == 0)).sum())
    fn = int(((pred == 0) & (y == 1)).sum())
    return {
        "accuracy": _ratio(tp + tn, y.size),
        "sensitivity": _ratio(tp, tp + fn),
        "specificity": _ratio(tn, tn + fp),
        "precision": _ratio(tp, tp + fp),
        "confusion": [[tn, fp], [fn, tp]],
    }


CLASSIFICATION_METRICS: tuple[str, ...] = ("accuracy", "sensitivity", "specificity", "precision", "roc_auc")
PATIENT_RULES: tuple[str, ...] = ("majority", "mean", "max")


def binary_classification_report(
    labels: Sequence[Any], probs: Sequence[Any], threshold: float = 0.5
) -> dict[str, Any]:
    """Accuracy, sensitivity, specificity, precision, ROC-AUC and confusion matrix of one set of scores.

    Args:
        labels: 0/1 ground truth.
        probs: probability of class 1; predicted positive when ``>= threshold``.
        threshold: decision threshold.

    Returns:
        dict with the five metrics (NaN where undefined, e.g. sensitivity without positives), ``recall``
        (= sensitivity), ``confusion`` as ``[[tn, fp], [fn, tp]]``, ``n``, ``n_positive`` and ``threshold``.
    """
    y, p = _arrays(labels, probs)
    report = _rates(y, p, threshold)
    report["recall"] = report["sensitivity"]
    report["roc_auc"] = roc_auc(y, p)
    report.update(n=int(y.size), n_positive=int(y.sum()), threshold=float(threshold))
    return report


def aggregate_by_patient(
    patient_ids: Sequence[str],
    probs: Sequence[Any],
    labels: Sequence[Any],
    rule: str = "majority",
    threshold: float = 0.5,
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """One verdict per patient from the scores of that patient's slices.

    ``majority``: the patient's score is the fraction of its slices called positive (``>= threshold``),
    so with the default threshold the verdict is positive when at least half of the slices are (a tie
    counts as positive, the cautious call). ``mean``: the mean slice probability. ``max``: the highest slice
    probability, so the verdict is positive when any slice is at or above the threshold: the rule for whole
    stacks, where a tumour crosses a few of many slices and the vote and the mean stay low however sure
    those slices are. The patient's label is positive when any of its slices is.

    Args:
        patient_ids: patient of each slice.
        probs: probability of class 1 per slice.
        labels: 0/1 label per slice.
        rule: ``"majority"``, ``"mean"`` or ``"max"``.
        threshold: slice decision threshold of the majority vote.

    Returns:
        ``(ids, probs, labels)``: patients in order of first appearance, their scores and labels.
    """
    if rule not in PATIENT_RULES:
        raise ValueError(f"rule must be one of {PATIENT_RULES}, got {rule!r}")
    y, p = _arrays(labels, probs)
    ids = [str(i) for i in patient_ids]
    if len(ids) != y.size:
        raise ValueError(f"patient_ids ({len(ids)}) and scores ({y.size}) differ in length")
    order = list(dict.fromkeys(ids))
    index = {pid: k for k, pid in enumerate(order)}
    group = np.fromiter((index[i] for i in ids), dtype=np.int64, count=len(ids))
    counts = np.bincount(group, minlength=len(order)).astype(np.float64)
    if rule == "max":
        scores = np.full(len(order), -np.inf)
        np.maximum.at(scores, group, p)
    else:
        values = (p >= threshold).astype(np.float64) if rule == "majority" else p
        scores = np.bincount(group, weights=values, minlength=len(order)) / np.maximum(counts, 1.0)
    patient_labels = (np.bincount(group, weights=y, minlength=len(order)) > 0).astype(np.int64)
    return order, scores, patient_labels


def _metric_fn(metric_name: str, threshold: float) -> Callable[[np.ndarray, np.ndarray], float]:
    if metric_name == "roc_auc":
        return roc_auc
    if metric_name == "recall":
        metric_name = "sensitivity"
    if metric_name not in CLASSIFICATION_METRICS:
        raise ValueError(f"unknown metric {metric_name!r}; known: {', '.join(CLASSIFICATION_METRICS)}")
    return lambda y, p: _rates(y, p, threshold)[metric_name]


def _resample_indices(
    rng: np.random.Generator, n: int, groups: np.ndarray | None, members: list[np.ndarray] | None
) -> np.ndarray:
    if groups is None or members is None:
        return rng.integers(0, n, size=n)
    drawn = rng.integers(0, len(members), size=len(members))
    return np.concatenate([members[g] for g in drawn])


def _group_members(groups: Sequence[Any] | None, n: int) -> tuple[np.ndarray | None, list[np.ndarray] | None]:
    if groups is None:
        return None, None
    keys = np.asarray([str(g) for g in groups])
    if keys.size != n:
        raise ValueError(f"groups ({keys.size}) and scores ({n}) differ in length")
    _, inverse = np.unique(keys, return_inverse=True)
    return inverse, [np.flatnonzero(inverse == g) for g in range(int(inverse.max()) + 1)]


def _percentiles(samples: np.ndarray, alpha: float) -> tuple[float, float]:
    if samples.size == 0:
        return float("nan"), float("nan")
    low, high = np.quantile(samples, [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(low), float(high)


def bootstrap_ci(
    labels: Sequence[Any],
    probs: Sequence[Any],
    metric_name: str,
    n_resamples: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
    threshold: float = 0.5,
    groups: Sequence[Any] | None = None,
) -> tuple[float, float]:
    """Percentile-bootstrap ``1 - alpha`` confidence interval of one metric.

    Args:
        labels: 0/1 ground truth.
        probs: probability of class 1.
        metric_name: one of :data:`CLASSIFICATION_METRICS` (``recall`` is accepted for sensitivity).
        n_resamples: bootstrap draws; draws where the metric is undefined (e.g. AUC of a one-class
            draw) are left out.
        seed: seed of the draws.
        alpha: 0.05 gives a 95 % interval.
        threshold: decision threshold of the rate metrics.
        groups: cluster of each sample (e.g. the patient of each slice): whole clusters are drawn, so
            that correlated slices of one patient do not narrow the interval.

    Returns:
        ``(low, high)``; NaN when no draw defined the metric.
    """
    y, p = _arrays(labels, probs)
    fn = _metric_fn(metric_name, threshold)
    group_index, members = _group_members(groups, y.size)
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(int(n_resamples)):
        idx = _resample_indices(rng, y.size, group_index, members)
        value = fn(y[idx], p[idx])
        if not math.isnan(value):
            values.append(value)
    return _percentiles(np.asarray(values, dtype=np.float64), alpha)


def paired_bootstrap_auc_difference(
    labels: Sequence[Any],
    probs_a: Sequence[Any],
    probs_b: Sequence[Any],
    n_resamples: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
    groups: Sequence[Any] | None = None,
) -> dict[str, float]:
    """Paired bootstrap of ``AUC(a) - AUC(b)`` on the same samples.

    Both models are scored on the same resampled indices each draw. The two-sided p-value is twice the
    smaller tail fraction of the draws on either side of zero (capped at 1).

    Returns:
        dict with ``difference`` (on the full data), ``ci_low``, ``ci_high``, ``p_value`` and
        ``n_used`` (draws with both classes present).
    """
    y, pa = _arrays(labels, probs_a)
    _, pb = _arrays(labels, probs_b)
    if pa.shape != pb.shape:
        raise ValueError("the two models' scores differ in length")
    group_index, members = _group_members(groups, y.size)
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(int(n_resamples)):
        idx = _resample_indices(rng, y.size, group_index, members)
        d = roc_auc(y[idx], pa[idx]) - roc_auc(y[idx], pb[idx])
        if not math.isnan(d):
            diffs.append(d)
    samples = np.asarray(diffs, dtype=np.float64)
    low, high = _percentiles(samples, alpha)
    if samples.size:
        tail = min(float((samples <= 0).mean()), float((samples >= 0).mean()))
        p_value = min(1.0, 2.0 * tail)
    else:
        p_value = float("nan")
    return {
        "difference": roc_auc(y, pa) - roc_auc(y, pb),
        "ci_low": low,
        "ci_high": high,
        "p_value": p_value,
        "n_used": float(samples.size),
    }
