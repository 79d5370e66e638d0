"""LUNA16 FROC analysis and the competition performance metric (CPM).

The numbers agree with the LUNA16 challenge's evaluation script (``noduleCADEvaluationLUNA16.py``,
Setio et al. 2017), whose rules are reproduced here (re-implemented, vectorised with numpy):

- **Hit.** A candidate hits a finding when the squared Euclidean distance between the candidate and
  the finding's centre is strictly smaller than the squared radius (``diameter_mm / 2``). A finding
  with a negative diameter (``annotations_excluded.csv`` holds ``-1``) gets a 10 mm diameter.
- **Included nodules** (``annotations.csv``): a nodule hit by several candidates counts once, scored
  with the highest probability among them; every candidate hitting it is taken off the false-positive
  list. A candidate hitting two nodules detects both. A nodule no candidate hits stays in the
  denominator and never enters the curve.
- **Excluded findings** (``annotations_excluded.csv``): a candidate hitting one and no included nodule
  is ignored, neither a true nor a false positive.
- **At most 100 marks per scan.** When a scan has more than 100 candidates, only those whose
  probability is strictly greater than the scan's 101st highest probability are kept (so ties at the
  cut can leave fewer than 100; no error is raised). This happens before matching.
- **Scans.** Only the ids in ``seriesuids.csv`` (one id per line, no header) count: results and
  annotations of other ids are ignored, and a listed scan without results adds to the FP divisor.
- **Curve.** One point per distinct score among the detected nodules' scores and the false positives'
  probabilities (plus the origin); FP per scan = false positives scoring at least the threshold divided
  by the number of scans, sensitivity = detected nodules scoring at least the threshold divided by all
  included nodules. The arithmetic follows the script's (ROC rates scaled back to counts) so results
  match it to the last bit, ties included.
- **Sensitivities** at 1/8, 1/4, 1/2, 1, 2, 4 and 8 FP per scan by ``np.interp`` on that curve (beyond
  the curve's last FP rate the final sensitivity holds); **CPM** is their mean.
- **Bootstrap.** Scans are drawn with replacement (as many as listed), their FROC entries pooled, the
  curve recomputed with the same scan count as divisor; the bounds are the sorted bootstrap values at
  indices ``floor(alpha/2 * n)`` and ``floor((1 - alpha/2) * n)``, as in the script.

Where the script has no defined answer this module chooses one (each is tested): an empty result
file gives sensitivity 0 everywhere (the script crashes); a system detecting no nodule gives 0 (the
script gives NaN); no included nodule in any listed scan raises ``InputError`` (division by zero); a
bootstrap draw without any nodule is skipped; a first line ``seriesuid`` in ``seriesuids.csv`` is read
as a header and skipped (the script would count it as a scan); a scan id listed twice raises
``InputError`` (the script would double-count it); ids are stripped of surrounding blanks.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path
from typing import Any

import numpy as np

from lungcad_transforms.errors import InputError
from lungcad_transforms.outputs import atomic_file

__all__ = [
    "FROC_FP_RATES",
    "MAX_CANDIDATES_PER_SCAN",
    "MISSING_DIAMETER_MM",
    "RESULTS_COLUMNS",
    "FROCResult",
    "froc_score",
    "evaluate_files",
    "save_froc_report",
    "write_results_csv",
    "read_seriesuids",
    "add_froc_arguments",
    "froc_command",
]

FROC_FP_RATES: tuple[float, ...] = (0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
"""The seven false-positive rates (per scan) whose sensitivities the CPM averages."""

MAX_CANDIDATES_PER_SCAN = 100
"""LUNA16 keeps at most this many candidates per scan (the most probable ones)."""

MISSING_DIAMETER_MM = 10.0
"""Diameter given to a finding whose diameter is negative (unknown) in the annotation file."""

RESULTS_COLUMNS: tuple[str, ...] = ("seriesuid", "coordX", "coordY", "coordZ", "probability")
"""Columns of a LUNA16 results (candidate / detection) CSV, in order; more may follow."""

_COORDS = ("coordX", "coordY", "coordZ")
# pairs (finding, candidate) compared at once while matching: bounds memory to ~200 MB on any input
_MAX_PAIRS_PER_CHUNK = 4_000_000

Records = Iterable[Mapping[str, Any]]
TableSource = str | os.PathLike | Records


# --------------------------------------------------------------------------------------------------
# reading inputs
# --------------------------------------------------------------------------------------------------
@dataclass
class _Table:
    """Columns of a LUNA16 CSV: ids, centres (N, 3) in mm, and one value column (diameter or probability)."""

    source: str
    uids: list[str]
    xyz: np.ndarray
    value: np.ndarray


def _to_float_column(
    values: Sequence[str], column: str, table_lines: np.ndarray | None, path: Path
) -> np.ndarray:
    try:
        arr = np.array(values, dtype=np.float64)
    except ValueError:
        arr = None
    if arr is None:
        # the fast conversion failed somewhere: find the first offending row to name its line
        for row, text in enumerate(values):
            try:
                float(text)
            except ValueError:
                line = int(table_lines[row]) if table_lines is not None else row + 2
                raise InputError(path, f"line {line}: {column} is not a number: {text!r}") from None
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        row = int(bad[0])
        line = int(table_lines[row]) if table_lines is not None else row + 2
        raise InputError(path, f"line {line}: {column} is not finite: {values[row]!r}")
    return arr


def _read_csv_table(path: str | os.PathLike, value_column: str, what: str) -> _Table:
    # csv + numpy rather than a row-by-row dict reader: 750k LUNA16 candidates parse in about two seconds,
    # and every error can name its line
    path = Path(path)
    if not path.is_file():
        raise InputError(path, f"{what} file not found")
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.reader(fh))
    except (UnicodeDecodeError, csv.Error) as err:
        raise InputError(path, f"not a readable CSV file ({err})") from None
    if not rows or not any(name.strip() for name in rows[0]):
        raise InputError(path, f"empty {what} file: the first line must be a header naming the columns")
    header = [name.strip() for name in rows[0]]
    wanted = ("seriesuid", *_COORDS, value_column)
    missing = [name for name in wanted if name not in header]
    if missing:
        raise InputError(
            path, f"line 1: missing column(s) {', '.join(missing)} (header is {','.join(header)!r})"
        )
    col = {name: header.index(name) for name in wanted}
    n_fields = max(col.values()) + 1
    data = rows[1:]
    lines = None
    if any(not row for row in data):  # csv yields [] for a blank line: skip those, keep line numbers
        kept = [i for i, row in enumerate(data) if row]
        data = [data[i] for i in kept]
        lines = np.asarray(kept, dtype=np.int64) + 2
    lengths = np.fromiter(map(len, data), dtype=np.int64, count=len(data))
    short = np.flatnonzero(lengths < n_fields)
    if short.size:
        i = int(short[0])
        line = int(lines[i]) if lines is not None else i + 2
        raise InputError(path, f"line {line}: {lengths[i]} field(s), the header needs at least {n_fields}")

    def column(name: str) -> list[str]:
        return list(map(itemgetter(col[name]), data))

    uids = [uid.strip() for uid in column("seriesuid")]
    for i, uid in enumerate(uids):
        if not uid:
            line = int(lines[i]) if lines is not None else i + 2
            raise InputError(path, f"line {line}: empty seriesuid")
    xyz = np.empty((len(data), 3), dtype=np.float64)
    for axis, name in enumerate(_COORDS):
        xyz[:, axis] = _to_float_column(column(name), name, lines, path)
    value = _to_float_column(column(value_column), value_column, lines, path)
    return _Table(str(path), uids, xyz, value)


def _records_table(records: Records, value_column: str, what: str) -> _Table:
    source = f"<{what}>"
    uids: list[str] = []
    rows: list[tuple[float, float, float, float]] = []
    for i, rec in enumerate(records):
        try:
            uid = str(rec["seriesuid"]).strip()
            vals = (
                float(rec["coordX"]),
                float(rec["coordY"]),
                float(rec["coordZ"]),
                float(rec[value_column]),
            )
        except KeyError as err:
            raise InputError(source, f"row {i}: missing key {err.args[0]!r}") from None
        except (TypeError, ValueError) as err:
            raise InputError(source, f"row {i}: not a number ({err})") from None
        if not uid:
            raise InputError(source, f"row {i}: empty seriesuid")
        if not all(math.isfinite(v) for v in vals):
            raise InputError(source, f"row {i}: coordinates and {value_column} must be finite, got {vals}")
        uids.append(uid)
        rows.append(vals)
    arr = np.asarray(rows, dtype=np.float64).reshape(-1, 4)
    return _Table(source, uids, arr[:, :3].copy(), arr[:, 3].copy())


def _load_table(source: TableSource | _Table, value_column: str, what: str) -> _Table:
    if isinstance(source, _Table):
        return source
    if isinstance(source, (str, os.PathLike)):
        return _read_csv_table(source, value_column, what)
    return _records_table(source, value_column, what)


def read_seriesuids(source: str | os.PathLike | Iterable[str]) -> list[str]:
    """Read the scan ids an evaluation covers (LUNA16 ``seriesuids.csv``: one id per line, no header).

    The first field of each non-blank line is the id. A first line reading ``seriesuid`` is taken for a
    header and skipped (a DICOM UID is digits and dots, so it cannot be a scan). An id listed twice
    raises ``InputError``: counting a scan twice would change the false positives per scan.

    Args:
        source: path of the CSV, or the ids themselves.

    Returns:
        the ids in file order.

    Raises:
        InputError: missing file, no ids, an id listed twice.

    Examples:
        >>> read_seriesuids(["1.3.6.1.4.1.14519.5.2.1.6279.6001.100225287222365663678666836860"])
        ['1.3.6.1.4.1.14519.5.2.1.6279.6001.100225287222365663678666836860']
    """
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise InputError(path, "seriesuids file not found")
        try:
            with open(path, newline="", encoding="utf-8-sig") as fh:
                rows = list(csv.reader(fh))
        except (UnicodeDecodeError, csv.Error) as err:
            raise InputError(path, f"not a readable CSV file ({err})") from None
        where = str(path)
        numbered = [(n, row[0].strip()) for n, row in enumerate(rows, start=1) if row and row[0].strip()]
        if numbered and numbered[0][1].lower() == "seriesuid":
            numbered = numbered[1:]
        label = "line"
    else:
        where = "<seriesuids>"
        numbered = [(n, str(uid).strip()) for n, uid in enumerate(source)]
        label = "item"
        empty = [n for n, uid in numbered if not uid]
        if empty:
            raise InputError(where, f"{label} {empty[0]}: empty seriesuid")
    seen: dict[str, int] = {}
    for n, uid in numbered:
        if uid in seen:
            raise InputError(where, f"{label} {n}: seriesuid {uid} already listed on {label} {seen[uid]}")
        seen[uid] = n
    if not seen:
        raise InputError(where, "lists no scan (expected one seriesuid per line)")
    return list(seen)


# --------------------------------------------------------------------------------------------------
# matching and the FROC curve
# --------------------------------------------------------------------------------------------------
def _scan_codes(uids: Sequence[str], index: Mapping[str, int]) -> np.ndarray:
    return np.fromiter((index.get(uid, -1) for uid in uids), dtype=np.int64, count=len(uids))


def _match_pairs(
    cand_scan: np.ndarray,
    cand_xyz: np.ndarray,
    find_scan: np.ndarray,
    find_xyz: np.ndarray,
    find_r2: np.ndarray,
    n_scans: int,
) -> tuple[np.ndarray, np.ndarray]:
    """All (candidate, finding) pairs in the same scan with squared distance < squared radius.

    Done by hand (not a KD-tree) because the rule is a strict ``<`` on the same floating sums as the
    official script, and findings are few per scan: comparing each finding with its scan's candidates
    is a few million pairs on LUNA16, processed in bounded chunks.
    """
    order = np.argsort(cand_scan, kind="stable")
    sorted_scan = cand_scan[order]
    scans = np.arange(n_scans)
    starts = np.searchsorted(sorted_scan, scans, side="left")
    counts = np.searchsorted(sorted_scan, scans, side="right") - starts
    per_finding = counts[find_scan]
    cum = np.cumsum(per_finding)
    hit_cand: list[np.ndarray] = []
    hit_find: list[np.ndarray] = []
    f0, n_find = 0, len(find_scan)
    while f0 < n_find:
        base = cum[f0 - 1] if f0 else 0
        f1 = max(f0 + 1, int(np.searchsorted(cum, base + _MAX_PAIRS_PER_CHUNK, side="right")))
        f1 = min(f1, n_find)
        chunk = np.arange(f0, f1)
        n_pairs = per_finding[chunk]
        f_rep = np.repeat(chunk, n_pairs)
        within = np.arange(int(n_pairs.sum())) - np.repeat(np.cumsum(n_pairs) - n_pairs, n_pairs)
        c = order[starts[find_scan[f_rep]] + within]
        # same order of operations as the script (x, then y, then z) so the strict boundary agrees bit for bit
        d = cand_xyz[c] - find_xyz[f_rep]
        d2 = d[:, 0] * d[:, 0] + d[:, 1] * d[:, 1] + d[:, 2] * d[:, 2]
        hit = d2 < find_r2[f_rep]
        hit_cand.append(c[hit])
        hit_find.append(f_rep[hit])
        f0 = f1
    if not hit_cand:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(hit_cand), np.concatenate(hit_find)


def _cap_per_scan(scan: np.ndarray, prob: np.ndarray, n_scans: int, max_per_scan: int) -> np.ndarray:
    """Keep-mask of the LUNA16 rule: in a scan with more than ``max_per_scan`` candidates, keep those
    strictly more probable than its ``max_per_scan + 1``-th highest probability."""
    keep = np.ones(len(scan), dtype=bool)
    if max_per_scan <= 0 or len(scan) == 0:
        return keep
    counts = np.bincount(scan, minlength=n_scans)
    crowded = counts > max_per_scan
    if not crowded.any():
        return keep
    order = np.lexsort((-prob, scan))  # by scan, most probable first
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    threshold = np.full(n_scans, -np.inf)
    threshold[crowded] = prob[order[starts[crowded] + max_per_scan]]
    return prob > threshold[scan]


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
    ann = _load_table(annotations, "diameter_mm", "annotations")
    res = _load_table(results, "probability", "results")
    exc = _load_table(excluded, "diameter_mm", "excluded annotations") if excluded is not None else None
    n_scans = len(uids)
    index = {uid: i for i, uid in enumerate(uids)}

    # findings of listed scans: included nodules first, then excluded ones
    ann_scan = _scan_codes(ann.uids, index)
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
        exc_scan = _scan_codes(exc.uids, index)
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

    res_scan = _scan_codes(res.uids, index)
    res_listed = res_scan >= 0
    c_scan = res_scan[res_listed]
    c_xyz = res.xyz[res_listed]
    c_prob = res.value[res_listed]
    n_cand = len(c_scan)

    hit_c, hit_f = _match_pairs(c_scan, c_xyz, f_scan, f_xyz, f_r2, n_scans)
    hit_included = f_included[hit_f]
    on_nodule = np.zeros(n_cand, dtype=bool)
    on_nodule[hit_c[hit_included]] = True
    on_excluded = np.zeros(n_cand, dtype=bool)
    on_excluded[hit_c[~hit_included]] = True
    ignored = on_excluded & ~on_nodule
    auc = _roc_auc(c_prob[~ignored], on_nodule[~ignored])

    kept = _cap_per_scan(c_scan, c_prob, n_scans, max_candidates_per_scan)
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


def evaluate_files(
    annotations_csv: str | os.PathLike,
    seriesuids_csv: str | os.PathLike,
    results_csv: str | os.PathLike,
    excluded_csv: str | os.PathLike | None = None,
    **kwargs: Any,
) -> FROCResult:
    """LUNA16 evaluation of files, argument order as the official script's command line.

    Args:
        annotations_csv: ``annotations.csv`` (included nodules).
        seriesuids_csv: ``seriesuids.csv`` (the scans evaluated, no header).
        results_csv: the system's results CSV (``seriesuid,coordX,coordY,coordZ,probability``).
        excluded_csv: ``annotations_excluded.csv``, or None.
        kwargs: passed to :func:`froc_score` (``n_bootstrap``, ``seed``, ...).

    Examples:
        >>> r = evaluate_files("annotations.csv", "seriesuids.csv", "results.csv",  # doctest: +SKIP
        ...                    "annotations_excluded.csv", n_bootstrap=1000)
        >>> print(f"CPM {r.cpm:.4f}")  # doctest: +SKIP
        CPM 0.8123
    """
    return froc_score(annotations_csv, results_csv, seriesuids_csv, excluded=excluded_csv, **kwargs)


# --------------------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------------------
def _format_value(value: Any) -> str:
    if isinstance(value, (float, np.floating)):
        return repr(float(value))  # shortest text that reads back to the same double
    if isinstance(value, (np.integer,)):
        return str(int(value))
    return "" if value is None else str(value)


def write_results_csv(rows: Iterable[Mapping[str, Any]], path: str | os.PathLike) -> Path:
    """Write candidates / detections in LUNA16 results form, atomically.

    Columns: ``seriesuid,coordX,coordY,coordZ,probability``, then ``diameter_mm`` when any row has it,
    then other keys in first-seen order. Floats are written at full precision, so probabilities keep
    their order and ties. The official evaluation script reads the file unchanged.

    Args:
        rows: dicts with at least the five LUNA16 keys (world mm, LPS).
        path: the CSV to write.

    Returns:
        ``path``.

    Raises:
        InputError: a row lacks a LUNA16 key or has a non-finite coordinate / probability (nothing is written).

    Examples:
        >>> write_results_csv(  # doctest: +SKIP
        ...     [{"seriesuid": "1.3.6.1.4.1.14519.5.2.1.6279.6001.100225287222365663678666836860",
        ...       "coordX": -128.7, "coordY": -175.3, "coordZ": -298.4, "probability": 0.93, "diameter_mm": 5.7}],
        ...     "results.csv")
    """
    path = Path(path)
    rows = list(rows)
    columns = list(RESULTS_COLUMNS)
    extras: dict[str, None] = {}
    for i, row in enumerate(rows):
        for key in RESULTS_COLUMNS:
            if key not in row:
                raise InputError(
                    path, f"row {i}: missing {key!r}; LUNA16 results need {','.join(RESULTS_COLUMNS)}"
                )
        for key in ("coordX", "coordY", "coordZ", "probability"):
            try:
                value = float(row[key])
            except (TypeError, ValueError):
                raise InputError(path, f"row {i}: {key} is not a number: {row[key]!r}") from None
            if not math.isfinite(value):
                raise InputError(path, f"row {i}: {key} is not finite: {row[key]!r}")
        if not str(row["seriesuid"]).strip():
            raise InputError(path, f"row {i}: empty seriesuid")
        for key in row:
            if key not in RESULTS_COLUMNS:
                extras.setdefault(key, None)
    if "diameter_mm" in extras:
        columns.append("diameter_mm")
    columns += [key for key in extras if key != "diameter_mm"]
    with atomic_file(path) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(columns)
            for row in rows:
                writer.writerow([_format_value(row.get(key)) for key in columns])
    return path


def _plot_froc(result: FROCResult, png_path: Path, title: str) -> None:
    # the object API with the Agg canvas: no pyplot global state, no display needed
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    fig = Figure(figsize=(6.4, 4.8), dpi=150)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    lo, hi = float(result.fp_rates.min()), float(result.fp_rates.max())
    grid = np.geomspace(lo, hi, 512)
    ax.plot(
        grid,
        _interp_at(grid, result.curve_fp_rate, result.curve_sensitivity),
        color="tab:blue",
        lw=2,
        label=f"FROC (CPM {result.cpm:.3f})",
    )
    if result.band_fp_rate is not None:
        pct = round(100 * result.confidence)
        ax.fill_between(
            result.band_fp_rate,
            result.band_low,
            result.band_high,
            color="tab:blue",
            alpha=0.15,
            label=f"{pct}% bootstrap CI ({result.n_bootstrap_used} draws)",
        )
    ax.plot(
        result.fp_rates,
        result.sensitivities,
        "o",
        color="tab:red",
        clip_on=False,
        zorder=3,
        label="sensitivity at the CPM rates",
    )
    ax.set_xscale("log", base=2)
    ax.set_xlim(lo, hi)
    ax.set_ylim(0.0, 1.0)
    ax.xaxis.set_major_locator(FixedLocator(result.fp_rates))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_yticks(np.linspace(0.0, 1.0, 11))
    ax.grid(True, which="major", alpha=0.4)
    ax.set_xlabel("Average number of false positives per scan")
    ax.set_ylabel("Sensitivity")
    ax.set_title(title)
    ax.legend(loc="lower right")
    fig.tight_layout()
    with atomic_file(png_path) as tmp:
        fig.savefig(tmp, format="png")


def save_froc_report(result: FROCResult, out_dir: str | os.PathLike, title: str = "FROC") -> dict[str, Path]:
    """Write ``froc.json`` (the numbers), ``froc_curve.csv`` (the curve) and ``froc.png`` (the plot) to ``out_dir``.

    The plot has a base-2 log FP axis from 1/8 to 8, the seven CPM points marked and, when the result
    was bootstrapped, the confidence band. Every file is written atomically.

    Args:
        result: from :func:`froc_score`.
        out_dir: folder (created if missing).
        title: plot title.

    Returns:
        ``{"json": ..., "curve": ..., "png": ...}`` paths.

    Examples:
        >>> paths = save_froc_report(result, "outputs/froc")  # doctest: +SKIP
        >>> sorted(paths)  # doctest: +SKIP
        ['curve', 'json', 'png']
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "froc.json", "curve": out / "froc_curve.csv", "png": out / "froc.png"}
    with atomic_file(paths["json"]) as tmp:
        tmp.write_text(json.dumps(result.to_dict(), indent=2) + "\n", encoding="utf-8")
    with atomic_file(paths["curve"]) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(["fp_per_scan", "sensitivity", "threshold"])
            for fp, sens, thr in zip(
                result.curve_fp_rate, result.curve_sensitivity, result.curve_threshold, strict=True
            ):
                writer.writerow([repr(float(fp)), repr(float(sens)), repr(float(thr))])
    _plot_froc(result, paths["png"], title)
    return paths


# --------------------------------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------------------------------
def add_froc_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``lungcad froc`` (the LUNA16 evaluation of a results CSV)."""
    parser.add_argument(
        "--annotations", required=True, help="annotations.csv: included nodules (LUNA16 form)"
    )
    parser.add_argument(
        "--seriesuids", required=True, help="seriesuids.csv: the scans evaluated, one per line"
    )
    parser.add_argument(
        "--results",
        required=True,
        help="results CSV: seriesuid,coordX,coordY,coordZ,probability (LUNA16 form)",
    )
    parser.add_argument(
        "--excluded", default=None, help="annotations_excluded.csv: findings whose hits are ignored"
    )
    parser.add_argument("--out", default=None, help="folder for froc.json, froc_curve.csv and froc.png")
    parser.add_argument(
        "--bootstrap",
        type=int,
        default=0,
        metavar="N",
        help="bootstrap draws for confidence bounds (LUNA16: 1000; default 0: none)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap draws")
    parser.add_argument("--confidence", type=float, default=0.95, help="confidence level of the bounds")
    parser.add_argument(
        "--max-per-scan",
        type=int,
        default=MAX_CANDIDATES_PER_SCAN,
        help="keep at most this many candidates per scan, the most probable (LUNA16: 100)",
    )


def froc_command(args: argparse.Namespace) -> int:
    """Run ``lungcad froc``: print the seven sensitivities, one per line, and ``CPM <value>`` last.

    Returns 0, or 2 after printing the problem to stderr when an input is bad.
    """
    if args.bootstrap < 0:
        print(f"lungcad froc: error: --bootstrap must be >= 0, got {args.bootstrap}", file=sys.stderr)
        return 2
    if not 0.0 < args.confidence < 1.0:
        print(f"lungcad froc: error: --confidence must lie in (0, 1), got {args.confidence}", file=sys.stderr)
        return 2
    try:
        result = evaluate_files(
            args.annotations,
            args.seriesuids,
            args.results,
            args.excluded,
            n_bootstrap=args.bootstrap,
            seed=args.seed,
            confidence=args.confidence,
            max_candidates_per_scan=args.max_per_scan,
        )
        paths = (
            save_froc_report(result, args.out, title=f"FROC - {Path(args.results).stem}") if args.out else {}
        )
    except InputError as err:
        print(f"lungcad froc: error: {err}", file=sys.stderr)
        return 2
    print(
        f"scans {result.n_scans}, nodules {result.total_nodules} (detected {result.detected_nodules}), "
        f"candidates {result.n_candidates_evaluated} evaluated of {result.n_candidates}, "
        f"false positives {result.n_false_positives}, ignored on excluded findings {result.n_ignored_excluded}"
    )
    if result.auc is not None:
        print(f"candidate ROC-AUC {result.auc:.4f}")
    for name, path in paths.items():
        print(f"wrote {name}: {path}")
    pct = round(100 * result.confidence)
    for i, (rate, sens) in enumerate(zip(result.fp_rates, result.sensitivities, strict=True)):
        line = f"sensitivity at {rate:g} FP/scan: {sens:.4f}"
        if result.ci_low is not None:
            line += f" ({pct}% CI {result.ci_low[i]:.4f}-{result.ci_high[i]:.4f})"
        print(line)
    print(f"CPM {result.cpm:.4f}")
    return 0
