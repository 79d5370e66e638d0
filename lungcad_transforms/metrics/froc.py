"""LUNA16 FROC / CPM, computed as the official evaluation script does."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lungcad_transforms.data.tables import TableSource, read_point_table, read_seriesuids
from lungcad_transforms.errors import InputError
from lungcad_transforms.metrics.froc_matching import cap_per_scan, hits_within_radius, scan_indices

__all__ = ["FROC_FP_RATES", "MAX_CANDIDATES_PER_SCAN", "MISSING_DIAMETER_MM", "FROCResult", "froc_score"]


FROC_FP_RATES: tuple[float, ...] = (0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)


MAX_CANDIDATES_PER_SCAN = 100


MISSING_DIAMETER_MM = 10.0


# --------------------------------------------------------------------------------------------------
# the FROC curve
# --------------------------------------------------------------------------------------------------
@dataclass
class _FrocEntries:
    """What the FROC curve is built from: one score per detected nodule (positive) and per false positive."""

    score: np.ndarray  # sorted, highest first
    positive: np.ndarray  # bool, detected nodule (True) or false positive (False)
    scan: np.ndarray  # scan index of each entry
    group_end: np.ndarray  # index of the last entry of each run of equal scores
    nodules_per_scan: np.ndarray  # included nodules per scan (detected or not)


def _curve(
    tp_cum: np.ndarray, fp_cum: np.ndarray, n_detected: float, n_fp: float, n_total: float, n_scans: int
) -> tuple[np.ndarray, np.ndarray]:
    """FP per scan and sensitivity at each threshold, from cumulative counts (origin first).

    The rates are computed as the script does (ROC rate times count, then divided), not as
    ``count / n_scans``: at a FP rate that equals a count exactly (LUNA16: 111 FPs over 888 scans is
    1/8 FP/scan) the last bit decides between the bottom and the top of a vertical step of the curve.
    """
    tps = np.concatenate([[0.0], tp_cum])
    fps = np.concatenate([[0.0], fp_cum])
    if n_fp > 0:
        fp_rate = (fps / n_fp) * n_fp / n_scans
    else:
        fp_rate = np.zeros_like(fps)
    if n_detected > 0:
        sensitivity = (tps / n_detected) * n_detected / n_total
    else:
        sensitivity = np.zeros_like(tps)
    return fp_rate, sensitivity


def _interp_at(
    rates: Sequence[float] | np.ndarray, fp_rate: np.ndarray, sensitivity: np.ndarray
) -> np.ndarray:
    # np.interp is the script's reading of the curve: at a repeated FP rate it takes the last (highest)
    # sensitivity, past the curve's end it holds the final value
    return np.interp(np.asarray(rates, dtype=np.float64), fp_rate, sensitivity)


def _ci_bounds(samples: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """Lower/upper bound per column: sorted values at floor(alpha/2 n) and floor((1 - alpha/2) n)."""
    ordered = np.sort(samples, axis=0)
    n = ordered.shape[0]
    tail = (1.0 - confidence) / 2.0
    return ordered[int(math.floor(tail * n))], ordered[int(math.floor((1.0 - tail) * n))]


def _roc_auc(scores: np.ndarray, labels: np.ndarray) -> float | None:
    """Area under the per-candidate ROC curve (ties count one half), or None without both classes.

    Via the Mann-Whitney U statistic (scipy): U / (n_pos n_neg) is the ROC AUC. MONAI's
    ``compute_roc_auc`` gives the same number but walks the candidates in a Python loop.
    """
    from scipy.stats import mannwhitneyu

    pos, neg = scores[labels], scores[~labels]
    if pos.size == 0 or neg.size == 0:
        return None
    u = mannwhitneyu(pos, neg, alternative="two-sided", method="asymptotic").statistic
    return float(u) / (pos.size * neg.size)


@dataclass
class FROCResult:
    """LUNA16 FROC analysis of one results file.

    Attributes:
        fp_rates: the FP-per-scan rates evaluated (LUNA16: 1/8 .. 8).
        sensitivities: sensitivity at each rate.
        cpm: competition performance metric, the mean of ``sensitivities``.
        total_nodules: included nodules in the listed scans (the sensitivity's denominator).
        detected_nodules: those hit by at least one kept candidate.
        n_scans: scans listed (the FP-per-scan divisor).
        n_candidates: result rows of listed scans.
        n_candidates_evaluated: after the per-scan cap.
        n_false_positives: evaluated candidates hitting no finding.
        n_ignored_excluded: evaluated candidates hitting only excluded findings.
        n_double_hits: extra hits on already-hit nodules (not false positives).
        n_dropped_by_cap: candidates removed by the at-most-``max_candidates_per_scan`` rule.
        n_results_unlisted: result rows of scans not in the list (ignored).
        n_annotations_unlisted: included annotations of scans not in the list (ignored).
        auc: per-candidate ROC AUC over all candidates of listed scans (before the cap): hits on an
            included nodule are positives, candidates hitting nothing negatives, hits on excluded
            findings left out; None when one class is empty.
        curve_fp_rate, curve_sensitivity, curve_threshold: the FROC curve, one point per distinct score
            (the first point is the origin, threshold +inf).
        ci_low, ci_high: bootstrap confidence bounds of ``sensitivities`` (None without bootstrap).
        cpm_ci: bootstrap bounds of the CPM.
        bootstrap_mean: mean bootstrap sensitivity at each rate.
        band_fp_rate, band_low, band_high: the bootstrap bounds on a log-spaced FP-rate grid (for plots).
        n_bootstrap, n_bootstrap_used: draws asked for and draws with at least one nodule.
        seed, confidence, max_candidates_per_scan: the settings used.
        sources: where the inputs came from (paths or "<list>").
    """

    fp_rates: np.ndarray
    sensitivities: np.ndarray
    cpm: float
    total_nodules: int
    detected_nodules: int
    n_scans: int
    n_candidates: int
    n_candidates_evaluated: int
    n_false_positives: int
    n_ignored_excluded: int
    n_double_hits: int
    n_dropped_by_cap: int
    n_results_unlisted: int
    n_annotations_unlisted: int
    auc: float | None
    curve_fp_rate: np.ndarray
    curve_sensitivity: np.ndarray
    curve_threshold: np.ndarray
    ci_low: np.ndarray | None = None
    ci_high: np.ndarray | None = None
    cpm_ci: tuple[float, float] | None = None
    bootstrap_mean: np.ndarray | None = None
    band_fp_rate: np.ndarray | None = None
    band_low: np.ndarray | None = None
    band_high: np.ndarray | None = None
    n_bootstrap: int = 0
    n_bootstrap_used: int = 0
    seed: int = 0
    confidence: float = 0.95
    max_candidates_per_scan: int = MAX_CANDIDATES_PER_SCAN
    sources: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The numbers as JSON-ready Python types (the curve itself is left to ``froc_curve.csv``)."""

        def floats(arr: np.ndarray | None) -> list[float] | None:
            return None if arr is None else [float(v) for v in arr]

        return {
            "definition": "LUNA16 FROC: sensitivity at 1/8..8 false positives per scan, CPM = their mean",
            "fp_rates": floats(self.fp_rates),
            "sensitivities": floats(self.sensitivities),
            "cpm": float(self.cpm),
            "ci_low": floats(self.ci_low),
            "ci_high": floats(self.ci_high),
            "cpm_ci": None if self.cpm_ci is None else [float(v) for v in self.cpm_ci],
            "bootstrap_mean": floats(self.bootstrap_mean),
            "n_bootstrap": self.n_bootstrap,
            "n_bootstrap_used": self.n_bootstrap_used,
            "confidence": self.confidence,
            "seed": self.seed,
            "total_nodules": self.total_nodules,
            "detected_nodules": self.detected_nodules,
            "n_scans": self.n_scans,
            "n_candidates": self.n_candidates,
            "n_candidates_evaluated": self.n_candidates_evaluated,
            "n_false_positives": self.n_false_positives,
            "n_ignored_excluded": self.n_ignored_excluded,
            "n_double_hits": self.n_double_hits,
            "n_dropped_by_cap": self.n_dropped_by_cap,
            "n_results_unlisted": self.n_results_unlisted,
            "n_annotations_unlisted": self.n_annotations_unlisted,
            "max_candidates_per_scan": self.max_candidates_per_scan,
            "auc": self.auc,
            "sources": dict(self.sources),
        }


def froc_score(
    annotations: TableSource,
    results: TableSource,
    seriesuids: str | os.PathLike | Iterable[str],
    excluded: TableSource | None = None,
    n_bootstrap: int = 0,
    seed: int = 0,
    confidence: float = 0.95,
    max_candidates_per_scan: int = MAX_CANDIDATES_PER_SCAN,
    fp_rates: Sequence[float] = FROC_FP_RATES,
) -> FROCResult:
    """FROC curve, sensitivities at fixed FP rates and CPM, exactly as the LUNA16 evaluation defines them.

    Args:
        annotations: included nodules: ``annotations.csv`` path or dicts with ``seriesuid, coordX, coordY,
            coordZ, diameter_mm`` (world mm, LPS, as LUNA16).
        results: the system's marks: results CSV path or dicts with ``seriesuid, coordX, coordY, coordZ,
            probability``.
        seriesuids: ``seriesuids.csv`` path (one id per line) or the ids: the scans evaluated.
        excluded: findings whose hits are ignored (``annotations_excluded.csv``); None: none.
        n_bootstrap: bootstrap draws of the scans for confidence bounds (LUNA16 uses 1000); 0: none.
        seed: seed of ``np.random.default_rng``; each draw takes ``rng.integers(0, n_scans, n_scans)``.
        confidence: two-sided confidence level of the bounds.
        max_candidates_per_scan: LUNA16's 100-mark cap (0 or less: no cap).
        fp_rates: the FP-per-scan rates to report (LUNA16's seven by default; the CPM averages them).

    Returns:
        a :class:`FROCResult`.

    Raises:
        InputError: unreadable or malformed input (naming file and line), or no included nodule in the
            listed scans (sensitivity undefined).

    Examples:
        >>> uid = "1.3.6.1.4.1.14519.5.2.1.6279.6001.100225287222365663678666836860"
        >>> nodule = {"seriesuid": uid, "coordX": -128.7, "coordY": -175.3, "coordZ": -298.4, "diameter_mm": 5.65}
        >>> marks = [
        ...     {"seriesuid": uid, "coordX": -128.0, "coordY": -175.0, "coordZ": -298.0, "probability": 0.93},
        ...     {"seriesuid": uid, "coordX": 60.0, "coordY": -120.0, "coordZ": -250.0, "probability": 0.40},
        ... ]
        >>> result = froc_score([nodule], marks, [uid])
        >>> result.cpm, result.detected_nodules, result.n_false_positives
        (1.0, 1, 1)
    """
    if n_bootstrap < 0:
        raise ValueError(f"n_bootstrap must be >= 0, got {n_bootstrap}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    uids = read_seriesuids(seriesuids)
    ann = read_point_table(annotations, "diameter_mm", "annotations")
    res = read_point_table(results, "probability", "results")
    exc = read_point_table(excluded, "diameter_mm", "excluded annotations") if excluded is not None else None
    n_scans = len(uids)
    index = {uid: i for i, uid in enumerate(uids)}

    # findings of listed scans: included nodules first, then excluded ones
    ann_scan = scan_indices(ann.uids, index)
    ann_listed = ann_scan >= 0
    n_included = int(ann_listed.sum())
    if n_included == 0:
        raise InputError(
            ann.source,
            f"no included nodule lies in any of the {n_scans} listed scans: sensitivity is undefined",
        )
    find_scan = [ann_scan[ann_listed]]
    find_xyz = [ann.xyz[ann_listed]]
    find_diam = [ann.value[ann_listed]]
    if exc is not None:
        exc_scan = scan_indices(exc.uids, index)
        exc_listed = exc_scan >= 0
        find_scan.append(exc_scan[exc_listed])
        find_xyz.append(exc.xyz[exc_listed])
        find_diam.append(exc.value[exc_listed])
    f_scan = np.concatenate(find_scan)
    f_xyz = np.concatenate(find_xyz)
    f_diam = np.concatenate(find_diam)
    f_diam = np.where(f_diam < 0.0, MISSING_DIAMETER_MM, f_diam)
    f_r2 = (f_diam / 2.0) * (f_diam / 2.0)
    f_included = np.arange(len(f_scan)) < n_included

    res_scan = scan_indices(res.uids, index)
    res_listed = res_scan >= 0
    c_scan = res_scan[res_listed]
    c_xyz = res.xyz[res_listed]
    c_prob = res.value[res_listed]
    n_cand = len(c_scan)

    hit_c, hit_f = hits_within_radius(c_scan, c_xyz, f_scan, f_xyz, f_r2, n_scans)
    hit_included = f_included[hit_f]
    on_nodule = np.zeros(n_cand, dtype=bool)
    on_nodule[hit_c[hit_included]] = True
    on_excluded = np.zeros(n_cand, dtype=bool)
    on_excluded[hit_c[~hit_included]] = True
    ignored = on_excluded & ~on_nodule
    auc = _roc_auc(c_prob[~ignored], on_nodule[~ignored])

    kept = cap_per_scan(c_scan, c_prob, n_scans, max_candidates_per_scan)
    # a nodule's score: the most probable kept candidate hitting it
    nodule_hits = hit_included & kept[hit_c]
    nod_score = np.full(n_included, -np.inf)
    np.maximum.at(nod_score, hit_f[nodule_hits], c_prob[hit_c[nodule_hits]])
    detected = np.zeros(n_included, dtype=bool)
    detected[hit_f[nodule_hits]] = True
    false_pos = kept & ~on_nodule & ~on_excluded

    nod_scan = f_scan[:n_included]
    score = np.concatenate([nod_score[detected], c_prob[false_pos]])
    positive = np.concatenate([np.ones(int(detected.sum()), bool), np.zeros(int(false_pos.sum()), bool)])
    scan = np.concatenate([nod_scan[detected], c_scan[false_pos]])
    order = np.argsort(-score, kind="stable")
    score, positive, scan = score[order], positive[order], scan[order]
    group_end = (
        np.flatnonzero(np.concatenate([score[1:] != score[:-1], [True]])) if score.size else np.zeros(0, int)
    )
    entries = _FrocEntries(score, positive, scan, group_end, np.bincount(nod_scan, minlength=n_scans))

    n_detected = int(detected.sum())
    n_fp = int(false_pos.sum())
    tp_cum = np.cumsum(positive)[group_end].astype(np.float64)
    fp_cum = np.cumsum(~positive)[group_end].astype(np.float64)
    curve_fp, curve_sens = _curve(tp_cum, fp_cum, n_detected, n_fp, n_included, n_scans)
    curve_thr = np.concatenate([[np.inf], score[group_end]])
    rates = np.asarray(fp_rates, dtype=np.float64)
    sens = _interp_at(rates, curve_fp, curve_sens)

    result = FROCResult(
        fp_rates=rates,
        sensitivities=sens,
        cpm=float(np.mean(sens)),
        total_nodules=n_included,
        detected_nodules=n_detected,
        n_scans=n_scans,
        n_candidates=n_cand,
        n_candidates_evaluated=int(kept.sum()),
        n_false_positives=n_fp,
        n_ignored_excluded=int((kept & ignored).sum()),
        n_double_hits=int(nodule_hits.sum()) - n_detected,
        n_dropped_by_cap=int((~kept).sum()),
        n_results_unlisted=int((~res_listed).sum()),
        n_annotations_unlisted=int((~ann_listed).sum()),
        auc=auc,
        curve_fp_rate=curve_fp,
        curve_sensitivity=curve_sens,
        curve_threshold=curve_thr,
        seed=seed,
        confidence=confidence,
        max_candidates_per_scan=max_candidates_per_scan,
        sources={
            "annotations": ann.source,
            "results": res.source,
            "seriesuids": os.fspath(seriesuids)
            if isinstance(seriesuids, (str, os.PathLike))
            else "<seriesuids>",
            "excluded": exc.source if exc is not None else "",
        },
    )
    if n_bootstrap:
        _bootstrap(result, entries, n_bootstrap, seed, confidence)
    return result


def _bootstrap(
    result: FROCResult, entries: _FrocEntries, n_bootstrap: int, seed: int, confidence: float
) -> None:
    """Scan-level bootstrap: a scan drawn k times contributes its entries and nodules k times."""
    n_scans = result.n_scans
    rng = np.random.default_rng(seed)
    band_rates = np.geomspace(result.fp_rates.min(), result.fp_rates.max(), 256)
    at_rates, on_band = [], []
    positive = entries.positive
    for _ in range(n_bootstrap):
        times_drawn = np.bincount(rng.integers(0, n_scans, size=n_scans), minlength=n_scans)
        n_total = float(times_drawn @ entries.nodules_per_scan)
        if n_total == 0:  # no nodule in this draw: its sensitivity is undefined
            continue
        weight = times_drawn[entries.scan]
        tp = np.cumsum(weight * positive)
        fp = np.cumsum(weight * ~positive)
        n_det = float(tp[-1]) if tp.size else 0.0
        n_fp = float(fp[-1]) if fp.size else 0.0
        # runs of equal scores whose scans were not drawn repeat the previous point: np.interp is unaffected
        fp_rate, sens = _curve(
            tp[entries.group_end].astype(np.float64),
            fp[entries.group_end].astype(np.float64),
            n_det,
            n_fp,
            n_total,
            n_scans,
        )
        at_rates.append(_interp_at(result.fp_rates, fp_rate, sens))
        on_band.append(_interp_at(band_rates, fp_rate, sens))
    result.n_bootstrap = n_bootstrap
    result.n_bootstrap_used = len(at_rates)
    if not at_rates:
        return
    samples = np.asarray(at_rates)
    result.ci_low, result.ci_high = _ci_bounds(samples, confidence)
    cpm_low, cpm_high = _ci_bounds(samples.mean(axis=1, keepdims=True), confidence)
    result.cpm_ci = (float(cpm_low[0]), float(cpm_high[0]))
    result.bootstrap_mean = samples.mean(axis=0)
    result.band_fp_rate = band_rates
    result.band_low, result.band_high = _ci_bounds(np.asarray(on_band), confidence)
