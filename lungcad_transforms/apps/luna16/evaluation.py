"""`lungcad froc`: LUNA16 FROC / CPM of result files, as the official script computes it."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from lungcad_transforms.data.tables import RESULTS_COLUMNS
from lungcad_transforms.errors import InputError
from lungcad_transforms.metrics.froc import MAX_CANDIDATES_PER_SCAN, FROCResult, froc_score
from lungcad_transforms.visualize.froc_plot import save_froc_report

__all__ = ["evaluate_files", "add_froc_arguments", "froc_command"]


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
        help=f"results CSV: {','.join(RESULTS_COLUMNS)} (LUNA16 form)",
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
