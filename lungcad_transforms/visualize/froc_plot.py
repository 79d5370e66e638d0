"""FROC curve plot and the FROC report files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from lungcad_transforms.data.csv_table import write_table
from lungcad_transforms.data.tables import FROC_CURVE_COLUMNS
from lungcad_transforms.metrics.froc import FROCResult, _interp_at
from lungcad_transforms.utils.atomic import atomic_file

__all__ = ["save_froc_report"]


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
    # not declared numeric: the first threshold is +inf (the curve's origin), written as "inf"
    curve = zip(result.curve_fp_rate, result.curve_sensitivity, result.curve_threshold, strict=True)
    rows = [dict(zip(FROC_CURVE_COLUMNS, map(float, point), strict=True)) for point in curve]
    write_table(rows, paths["curve"], FROC_CURVE_COLUMNS)
    _plot_froc(result, paths["png"], title)
    return paths
