"""Ignite handler that turns segmentation probability maps into candidates and scores."""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.data import MetaTensor
from monai.utils import convert_to_numpy

from lungcad_transforms.data.datasets import SkipBadScansDataset
from lungcad_transforms.errors import InputError
from lungcad_transforms.handlers.run_collector import RunCollector
from lungcad_transforms.utils.atomic import atomic_file

logger = logging.getLogger(__name__)

__all__ = ["NoduleCandidatesHandler"]


class NoduleCandidatesHandler(RunCollector):
    """Gather the nodule candidates of every scan an engine processes; write CSV (and metrics) to a folder.

    Attached to a MONAI ``SupervisedEvaluator`` whose postprocessing puts candidate rows (from
    :class:`lungcad_transforms.candidates.ExtractCandidatesd`) under ``candidates_key``:

    - after every scan, ``<output_dir>/candidates.csv`` is rewritten (atomically) with the rows of all scans
      so far, in LUNA16 results form (``seriesuid,coordX,coordY,coordZ,probability,diameter_mm,volume_mm3``);
    - at the end of the run, with ``annotations`` given, the LUNA16 FROC analysis
      (:func:`lungcad_transforms.froc.froc_score`) of those candidates is written to ``froc.json`` /
      ``froc_curve.csv`` / ``froc.png``, and ``<output_dir>/<summary_filename>`` gets the headline figures:
      candidate sensitivity (nodules hit by any candidate), false positives per scan, the FROC
      sensitivities and CPM, and the engine's metrics (Dice) with per-scan values.

    Args:
        output_dir: where the files go.
        annotations: LUNA16 ``annotations.csv`` of the scans (world mm, LPS); None: candidates only.
        candidates_key: output key holding each scan's candidate rows.
        seriesuid_key: batch key holding each scan's id (a scan without candidates still counts as a scan).
        filename: candidate CSV name.
        summary_filename: metrics JSON name.
        skipped_from: a :class:`SkipBadScansDataset` whose skipped scans are listed in the summary.

    Examples:
        >>> handler = NoduleCandidatesHandler("eval", annotations="data/phantoms/annotations.csv")  # doctest: +SKIP
        >>> handler.attach(evaluator); evaluator.run()  # doctest: +SKIP
        >>> handler.summary["candidate_sensitivity"], handler.summary["fp_per_scan"]  # doctest: +SKIP
        (1.0, 2.5)
    """

    def __init__(
        self,
        output_dir: str | os.PathLike,
        annotations: str | os.PathLike | None = None,
        candidates_key: str = "candidates",
        seriesuid_key: str = "seriesuid",
        filename: str = "candidates.csv",
        summary_filename: str = "metrics.json",
        skipped_from: SkipBadScansDataset | None = None,
    ) -> None:
        self.output_dir = Path(output_dir)
        self.annotations = os.fspath(annotations) if annotations else None
        self.candidates_key = candidates_key
        self.seriesuid_key = seriesuid_key
        self.csv_path = self.output_dir / filename
        self.summary_path = self.output_dir / summary_filename
        self.skipped_from = skipped_from
        self.rows: list[dict[str, Any]] = []
        self.seriesuids: list[str] = []
        self.summary: dict[str, Any] = {}

    def _reset(self, engine: Any) -> None:
        self.rows, self.seriesuids, self.summary = [], [], {}

    def _collect(self, engine: Any) -> None:
        outputs = engine.state.output if isinstance(engine.state.output, list) else [engine.state.output]
        batches = (
            engine.state.batch
            if isinstance(engine.state.batch, list)
            else [engine.state.batch] * len(outputs)
        )
        for out, batch in zip(outputs, batches, strict=True):
            rows = list(out.get(self.candidates_key) or [])
            uid = str(batch.get(self.seriesuid_key) or "") if isinstance(batch, Mapping) else ""
            if not uid:
                image = out.get("image", batch.get("image") if isinstance(batch, Mapping) else None)
                uid = str(image.meta.get("seriesuid", "")) if isinstance(image, MetaTensor) else ""
            if not uid and rows:
                uid = str(rows[0]["seriesuid"])
            self.seriesuids.append(uid)
            self.rows.extend(rows)
            logger.info("scan %s: %d nodule candidate(s)", uid, len(rows))
        self._write_csv()

    def _write_csv(self) -> None:
        from lungcad_transforms.data.csv_table import write_table
        from lungcad_transforms.data.tables import SEGMENTATION_CANDIDATE_COLUMNS, write_results_csv

        if self.rows:
            write_results_csv(self.rows, self.csv_path)
        else:  # header only: a run without candidates still leaves a valid LUNA16 results file
            write_table([], self.csv_path, SEGMENTATION_CANDIDATE_COLUMNS)

    def _finish(self, engine: Any) -> None:
        self._write_csv()
        summary: dict[str, Any] = {
            "n_scans": len(self.seriesuids),
            "n_candidates": len(self.rows),
            "candidates_csv": str(self.csv_path),
        }
        if self.skipped_from is not None:
            summary["skipped_scans"] = [
                {"scan": where, "reason": why} for where, why in self.skipped_from.skipped
            ]
        for name, value in getattr(engine.state, "metrics", {}).items():
            summary[name] = _jsonable(value)
        details = getattr(engine.state, "metric_details", {}) or {}
        for name, value in details.items():
            per_scan = (
                np.asarray(_jsonable(value), dtype=np.float64).reshape(len(self.seriesuids), -1).mean(axis=1)
                if len(self.seriesuids)
                else []
            )
            summary[f"{name}_per_scan"] = {
                uid: float(v) for uid, v in zip(self.seriesuids, per_scan, strict=True)
            }
        if self.annotations and self.seriesuids:
            summary.update(self._detection_figures())
        self.summary = summary
        if self.annotations or self.skipped_from is not None:
            with atomic_file(self.summary_path) as tmp:
                tmp.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
            logger.info("nodule detection summary (%s): %s", self.summary_path, _headline(summary))
        logger.info(
            "wrote %d candidate(s) of %d scan(s) to %s", len(self.rows), len(self.seriesuids), self.csv_path
        )

    def _detection_figures(self) -> dict[str, Any]:
        from lungcad_transforms.metrics.froc import froc_score
        from lungcad_transforms.visualize.froc_plot import save_froc_report

        try:
            result = froc_score(self.annotations, self.rows, sorted(set(self.seriesuids)))
        except InputError as err:
            logger.warning("no detection figures: %s", err)
            return {"detection_error": str(err)}
        save_froc_report(result, self.output_dir, title="Nodule candidates (segmentation bundle)")
        return {
            "annotations": self.annotations,
            "n_nodules": result.total_nodules,
            "nodules_detected": result.detected_nodules,
            "candidate_sensitivity": result.detected_nodules / result.total_nodules,
            "false_positives": result.n_false_positives,
            "fp_per_scan": result.n_false_positives / result.n_scans,
            "froc_sensitivities": {
                f"{r:g}": float(s) for r, s in zip(result.fp_rates, result.sensitivities, strict=True)
            },
            "cpm": result.cpm,
        }


def _jsonable(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        value = convert_to_numpy(value)
    if isinstance(value, np.ndarray):
        return value.tolist() if value.size != 1 else float(value.reshape(-1)[0])
    if isinstance(value, (np.floating, float)):
        return None if not math.isfinite(float(value)) else float(value)
    if isinstance(value, (np.integer, int)):
        return int(value)
    return value


def _headline(summary: Mapping[str, Any]) -> str:
    keys = ("n_scans", "val_mean_dice", "candidate_sensitivity", "fp_per_scan", "cpm")
    return ", ".join(
        f"{k} {summary[k]:.4g}" if isinstance(summary.get(k), float) else f"{k} {summary.get(k)}"
        for k in keys
        if k in summary
    )
