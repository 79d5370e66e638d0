"""Ignite handlers that map network outputs back to candidate rows: CPM and the results CSV."""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from ignite.engine import Engine
from ignite.metrics import Metric
from monai.utils import convert_to_numpy

from lungcad_transforms.handlers.run_collector import RunCollector

if TYPE_CHECKING:  # the dataset (an app) is only named in annotations: handlers sit below apps
    from lungcad_transforms.apps.detection.candidate_dataset import MultiScalePatchDataset

logger = logging.getLogger(__name__)

__all__ = ["CandidateCPM", "CandidateScoresHandler", "CandidateResultsWriter"]


# --------------------------------------------------------------------------------------------------
# engine add-ons: CPM as a metric, results CSV as a handler
# --------------------------------------------------------------------------------------------------
def _batch_scores(engine: Any) -> tuple[list[int], list[float]]:
    """Candidate indices and nodule probabilities of the current iteration (decollated or not)."""
    batch, output = engine.state.batch, engine.state.output

    def collect(items: Any, key: str) -> list[Any]:
        if isinstance(items, Mapping):
            return list(convert_to_numpy(items[key]).reshape(-1))
        return [
            (convert_to_numpy(item[key]).reshape(-1)[0] if isinstance(item[key], torch.Tensor) else item[key])
            for item in items
        ]

    indices = [int(i) for i in collect(batch, "index")]
    preds = [float(p) for p in collect(output, "pred")]
    if len(indices) != len(preds):
        raise RuntimeError(f"{len(indices)} candidate indices but {len(preds)} predictions in one iteration")
    return indices, preds


def _to_probability(values: Sequence[float], logits: bool) -> list[float]:
    if not logits:
        return list(values)
    return [1.0 / (1.0 + math.exp(-v)) if v >= 0 else math.exp(v) / (1.0 + math.exp(v)) for v in values]


def _gather(values: list[Any]) -> list[Any]:
    """Concatenate a per-process list over all processes (DDP); the list itself otherwise."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() <= 1:
        return values
    parts: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(parts, values)
    return [v for part in parts for v in part]


def _result_rows(records: Sequence[Mapping[str, Any]], scores: Mapping[int, float]) -> list[dict[str, Any]]:
    rows = []
    for index in sorted(scores):
        record = records[index]
        if record.get("synthetic"):
            continue
        row = {k: record[k] for k in ("seriesuid", "coordX", "coordY", "coordZ")}
        row["probability"] = scores[index]
        if "diameter_mm" in record:
            row["diameter_mm"] = record["diameter_mm"]
        rows.append(row)
    return rows


class CandidateCPM(Metric):  # type: ignore[misc,valid-type]
    """The LUNA16 CPM of a validation epoch, as an ignite metric usable as a MONAI key metric.

    Collects each candidate's nodule probability (read from ``engine.state.output[...]["pred"]``,
    matched to its row through ``engine.state.batch[...]["index"]``), and at the end of the epoch
    scores them with ``froc.froc_score`` against the nodule annotations: the mean sensitivity at
    1/8 .. 8 false positives per scan. Works with decollated or batched engine state and gathers
    across processes under DDP.

    Args:
        dataset: the :class:`MultiScalePatchDataset` the evaluator iterates (for rows and scan ids).
        annotations: LUNA16 ``annotations.csv`` path or rows (nodule centres and diameters).
        logits: predictions are logits (a sigmoid is applied), else probabilities.

    Examples:
        >>> cpm = CandidateCPM(val_dataset, "phantoms/annotations.csv")  # doctest: +SKIP
        >>> # MONAI: SupervisedEvaluator(..., key_val_metric={"val_cpm": cpm})
    """

    def __init__(self, dataset: MultiScalePatchDataset, annotations: Any, logits: bool = True) -> None:
        self.dataset = dataset
        self.annotations = annotations
        self.logits = logits
        self._indices: list[int] = []
        self._scores: list[float] = []
        super().__init__(output_transform=lambda x: x)

    def reset(self) -> None:
        self._indices, self._scores = [], []

    def update(self, output: Any) -> None:  # the work happens in iteration_completed
        pass

    def iteration_completed(self, engine: Engine) -> None:
        indices, preds = _batch_scores(engine)
        self._indices.extend(indices)
        self._scores.extend(_to_probability(preds, self.logits))

    def compute(self) -> float:
        from lungcad_transforms.metrics.froc import froc_score

        indices, scores = _gather(self._indices), _gather(self._scores)
        rows = _result_rows(self.dataset.records, dict(zip(indices, scores, strict=True)))
        return float(froc_score(self.annotations, rows, self.dataset.seriesuids).cpm)


class CandidateScoresHandler(RunCollector):
    """Engine handler base: the nodule probability of every candidate a run scores, acted on when it ends.

    Records ``dataset index -> probability`` at every iteration; when the run completes, gathers the
    records of all DDP processes and calls :meth:`scores_complete` on rank 0 only (the other ranks return).
    Subclasses write or explain; they share this so that every per-candidate handler collects and gathers
    the same way.

    Args:
        logits: the engine's predictions are logits (a sigmoid is applied), else probabilities.
    """

    def __init__(self, logits: bool = True) -> None:
        self.logits = logits
        self.scores: dict[int, float] = {}

    def _reset(self, engine: Engine) -> None:
        self.scores = {}

    def _collect(self, engine: Engine) -> None:
        indices, preds = _batch_scores(engine)
        self.scores.update(zip(indices, _to_probability(preds, self.logits), strict=True))

    def _finish(self, engine: Engine) -> None:
        import torch.distributed as dist

        items = _gather(list(self.scores.items()))
        if dist.is_available() and dist.is_initialized() and dist.get_rank() != 0:
            return
        self.scores_complete(dict(items))

    def scores_complete(self, scores: dict[int, float]) -> None:
        """Act on the scores of the whole run (rank 0)."""
        raise NotImplementedError


class CandidateResultsWriter(CandidateScoresHandler):
    """Engine handler: write the scored candidates as a LUNA16 results CSV, and the FROC report.

    At the end of a run it writes, under ``output_dir``: ``results.csv``
    (``seriesuid,coordX,coordY,coordZ,probability[,diameter_mm]``, readable by the official LUNA16
    evaluation script), ``seriesuids.csv`` (the scans scored), ``skipped.csv`` (candidates left out and
    why); and when ``annotations`` is given, ``froc.json`` (sensitivities, CPM, bootstrap bounds,
    per-candidate ROC-AUC), ``froc_curve.csv`` and ``froc.png`` via ``froc.save_froc_report``.

    Args:
        dataset: the :class:`MultiScalePatchDataset` the engine iterates.
        output_dir: where the files go.
        annotations: nodule annotations for the FROC analysis (None: results only).
        n_bootstrap: bootstrap draws for the confidence bounds.
        logits: predictions are logits (a sigmoid is applied), else probabilities.
        results_name: file name of the results CSV.

    Examples:
        >>> writer = CandidateResultsWriter(dataset, "eval/", annotations="annotations.csv")  # doctest: +SKIP
        >>> writer.attach(evaluator)  # doctest: +SKIP
    """

    def __init__(
        self,
        dataset: MultiScalePatchDataset,
        output_dir: str | os.PathLike,
        annotations: Any = None,
        n_bootstrap: int = 1000,
        logits: bool = True,
        results_name: str = "results.csv",
    ) -> None:
        super().__init__(logits)
        self.dataset = dataset
        self.output_dir = Path(output_dir)
        self.annotations = annotations
        self.n_bootstrap = int(n_bootstrap)
        self.results_name = results_name
        self.froc = None

    def scores_complete(self, scores: dict[int, float]) -> None:
        from lungcad_transforms.data.csv_table import write_table
        from lungcad_transforms.data.tables import (
            SKIPPED_CANDIDATE_COLUMNS,
            write_results_csv,
            write_seriesuids,
        )
        from lungcad_transforms.metrics.froc import froc_score
        from lungcad_transforms.visualize.froc_plot import save_froc_report

        rows = _result_rows(self.dataset.records, scores)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        results = write_results_csv(rows, self.output_dir / self.results_name)
        write_seriesuids(self.dataset.seriesuids, self.output_dir / "seriesuids.csv")
        write_table(
            self.dataset.skipped, self.output_dir / "skipped.csv", SKIPPED_CANDIDATE_COLUMNS, ["reason"]
        )
        logger.info("wrote %d scored candidate(s) to %s", len(rows), results)
        if self.annotations is not None:
            self.froc = froc_score(
                self.annotations, rows, self.dataset.seriesuids, n_bootstrap=self.n_bootstrap
            )
            paths = save_froc_report(self.froc, self.output_dir, title="FROC - false-positive reduction")
            logger.info("CPM %.4f (ROC-AUC %s); report in %s", self.froc.cpm, self.froc.auc, paths["json"])
