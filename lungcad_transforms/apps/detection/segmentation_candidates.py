"""Training candidates for false-positive reduction from what the segmentation bundle actually finds.

The segmentation bundle's ``evaluate`` run writes its candidates (LUNA16 results form, with probability);
:func:`label_candidates` labels them against the annotations by the LUNA16 hit rule (a candidate closer
to a nodule's centre than its radius is that nodule), so the FP-reduction bundle trains on the false
positives it will be shown in the chained run (its hard negatives) instead of on generic ones. Nodules
the segmentation missed are added as positives at their centres, so no positive is lost.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from lungcad_transforms.data.tables import read_annotations, read_candidates, write_candidates_csv

__all__ = ["label_candidates"]

_COORDS = ("coordX", "coordY", "coordZ")


def _hits(cands: Sequence[dict[str, Any]], marks: Sequence[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    from lungcad_transforms.metrics.froc_matching import hits_within_radius

    uids = sorted({r["seriesuid"] for r in cands} | {r["seriesuid"] for r in marks})
    index = {u: i for i, u in enumerate(uids)}
    if not cands or not marks:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return hits_within_radius(
        np.array([index[r["seriesuid"]] for r in cands]),
        np.array([[r[c] for c in _COORDS] for r in cands], dtype=np.float64),
        np.array([index[r["seriesuid"]] for r in marks]),
        np.array([[r[c] for c in _COORDS] for r in marks], dtype=np.float64),
        np.array([(r["diameter_mm"] / 2.0) ** 2 for r in marks], dtype=np.float64),
        len(uids),
    )


def label_candidates(
    results: str | os.PathLike | Sequence[str | os.PathLike],
    annotations: str | os.PathLike,
    out: str | os.PathLike | None = None,
    excluded: str | os.PathLike | None = None,
    add_missed: bool = True,
) -> list[dict[str, Any]]:
    """Label a segmentation candidate table for FP-reduction training (LUNA16 ``candidates.csv`` form).

    Args:
        results: the segmentation bundle's ``candidates.csv`` (``seriesuid,coordX,coordY,coordZ,probability``...),
            or several (e.g. of its training and its validation split).
        annotations: LUNA16 ``annotations.csv`` of the same scans.
        out: where to write the labelled table (atomically); ``None``: only return it.
        excluded: LUNA16 ``annotations_excluded``-form table: candidates hitting only those regions are
            left out (neither nodule nor non-nodule).
        add_missed: add a class-1 candidate at the centre of every nodule no candidate hit.

    Returns:
        rows ``seriesuid, coordX, coordY, coordZ, class, kind`` (``kind``: ``"segmentation_hit"``,
        ``"segmentation_false_positive"`` or ``"missed_nodule"``).

    Raises:
        InputError: a table is missing or malformed (named with its line).

    Examples:
        >>> rows = label_candidates("eval/candidates.csv", "data/embedded/annotations.csv")  # doctest: +SKIP
        >>> sorted({r["class"] for r in rows})  # doctest: +SKIP
        [0, 1]
    """
    files = [results] if isinstance(results, (str, os.PathLike)) else list(results)
    cands = [row for f in files for row in read_candidates(f)]
    marks = read_annotations(annotations)
    hit_c, hit_m = _hits(cands, marks)
    positive = np.zeros(len(cands), bool)
    positive[hit_c] = True
    ignored = np.zeros(len(cands), bool)
    if excluded is not None:
        ex_c, _ = _hits(cands, read_annotations(excluded))
        ignored[ex_c] = True
    rows: list[dict[str, Any]] = []
    for i, c in enumerate(cands):
        if ignored[i] and not positive[i]:
            continue
        kind = "segmentation_hit" if positive[i] else "segmentation_false_positive"
        rows.append(
            {
                "seriesuid": c["seriesuid"],
                **{k: c[k] for k in _COORDS},
                "class": int(positive[i]),
                "kind": kind,
            }
        )
    if add_missed:
        found = set(hit_m.tolist())
        for j, m in enumerate(marks):
            if j not in found:
                rows.append(
                    {
                        "seriesuid": m["seriesuid"],
                        **{k: m[k] for k in _COORDS},
                        "class": 1,
                        "kind": "missed_nodule",
                    }
                )
    if out is not None:
        write_candidates_csv(rows, out)
    return rows
