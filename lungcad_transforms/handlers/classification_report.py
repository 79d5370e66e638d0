"""Ignite handler that writes per-slice scores, per-patient verdicts and their metrics with bootstrap CIs."""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ignite.engine import Engine
from monai.utils import convert_to_numpy

from lungcad_transforms.handlers.candidate_scores import CandidateScoresHandler
from lungcad_transforms.metrics.classification import PATIENT_RULES
from lungcad_transforms.utils.atomic import atomic_file

logger = logging.getLogger(__name__)

__all__ = ["PATIENT_LEVELS", "positive_class_scores", "SliceScoresHandler", "ClassificationReportWriter"]

# the levels of metrics.json: slices, then patients by each rule of metrics.aggregate_by_patient
PATIENT_LEVELS: tuple[str, ...] = ("slice", *(f"patient_{rule}" for rule in PATIENT_RULES))


def positive_class_scores(engine: Engine, class_idx: int = 1) -> tuple[list[int], list[float]]:
    """Dataset indices and class-``class_idx`` probabilities of the current iteration (decollated or not).

    ``pred`` is a probability vector per item (after a softmax in the post-processing), or one value.
    """
    batch, output = engine.state.batch, engine.state.output
    if isinstance(output, Mapping):
        preds = convert_to_numpy(output["pred"]).reshape(
            len(convert_to_numpy(batch["index"]).reshape(-1)), -1
        )
        indices = convert_to_numpy(batch["index"]).reshape(-1).tolist()
    else:
        preds = np.stack([convert_to_numpy(item["pred"]).reshape(-1) for item in output])
        indices = [int(convert_to_numpy(torch.as_tensor(item["index"])).reshape(-1)[0]) for item in batch]
    column = class_idx if preds.shape[1] > class_idx else 0
    return [int(i) for i in indices], [float(p) for p in preds[:, column]]


class SliceScoresHandler(CandidateScoresHandler):
    """Base of the slice handlers: the class-1 probability of every slice of a run, gathered over DDP ranks."""

    def __init__(self, class_idx: int = 1) -> None:
        super().__init__(logits=False)
        self.class_idx = class_idx

    def _collect(self, engine: Engine) -> None:
        indices, probs = positive_class_scores(engine, self.class_idx)
        self.scores.update(zip(indices, probs, strict=True))


def _clean(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


class ClassificationReportWriter(SliceScoresHandler):
    """Engine handler: per-slice CSV, per-patient verdicts, metrics with bootstrap CIs, confusion matrix PNGs.

    At the end of a run it writes under ``output_dir``:

    - ``slices.csv``: ``patient,study,slice,label,probability,prediction`` (label -1 without a mask);
    - ``patients.csv``: per patient the slice counts, the majority-vote score and verdict, the mean
      probability and its verdict, and the highest slice probability and its verdict (any slice called
      positive: the rule for whole stacks, where a tumour crosses a few of many slices);
    - ``metrics.json``: for ``slice``, ``patient_majority``, ``patient_mean`` and ``patient_max``: accuracy, sensitivity,
      specificity, precision, ROC-AUC, confusion matrix, each metric with a percentile bootstrap CI
      (slices drawn by patient, so correlated slices do not narrow it); present only where labels are known;
    - ``confusion_<level>.png`` and ``roc.png``; ``skipped.csv`` with the studies left out and why.

    Args:
        dataset: the ``PETCTSliceDataset`` the engine iterates.
        output_dir: where the files go.
        threshold: slice probability at or above which a slice is called positive.
        n_bootstrap: bootstrap draws for the intervals.
        seed: seed of the draws.

    Examples:
        >>> ClassificationReportWriter(test_dataset, "eval/").attach(evaluator)  # doctest: +SKIP
    """

    def __init__(
        self,
        dataset: Any,
        output_dir: str | os.PathLike,
        threshold: float = 0.5,
        n_bootstrap: int = 1000,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.dataset = dataset
        self.output_dir = Path(output_dir)
        self.threshold = float(threshold)
        self.n_bootstrap = int(n_bootstrap)
        self.seed = int(seed)
        self.metrics: dict[str, Any] = {}

    def scores_complete(self, scores: dict[int, float]) -> None:
        self.write(scores)

    def _level(
        self, labels: np.ndarray, probs: np.ndarray, groups: Sequence[str] | None, threshold: float
    ) -> dict[str, Any]:
        from lungcad_transforms.metrics.classification import (
            CLASSIFICATION_METRICS,
            binary_classification_report,
            bootstrap_ci,
        )

        report = binary_classification_report(labels, probs, threshold)
        if self.n_bootstrap:
            report["ci95"] = {
                name: list(
                    bootstrap_ci(
                        labels, probs, name, self.n_bootstrap, self.seed, 0.05, threshold, groups=groups
                    )
                )  # fmt: skip
                for name in CLASSIFICATION_METRICS
            }
        return report

    def write(self, scores: Mapping[int, float]) -> dict[str, Any]:
        """Write the files for ``scores`` (dataset index -> class-1 probability); return the metrics."""
        from lungcad_transforms.data.csv_table import write_table
        from lungcad_transforms.metrics.classification import aggregate_by_patient
        from lungcad_transforms.visualize.classification_plots import save_confusion_matrix_png, save_roc_png

        out = self.output_dir
        out.mkdir(parents=True, exist_ok=True)
        order = sorted(scores)
        records = [self.dataset.records[i] for i in order]
        probs = np.asarray([scores[i] for i in order], dtype=np.float64)
        labels = np.asarray([r["label"] for r in records], dtype=np.int64)
        patients = [r["patient"] for r in records]
        rows = [
            {**r, "probability": p, "prediction": int(p >= self.threshold)}
            for r, p in zip(records, probs, strict=True)
        ]
        write_table(rows, out / "slices.csv", ["patient", "study", "slice", "label", "probability", "prediction"],
                    numeric=["probability"], integer=["slice", "label", "prediction"])  # fmt: skip
        by_rule = {}
        for rule in PATIENT_RULES:
            ids, by_rule[rule], patient_labels = aggregate_by_patient(
                patients, probs, np.maximum(labels, 0), rule, self.threshold
            )
        majority, mean, top = by_rule["majority"], by_rule["mean"], by_rule["max"]
        patient_arr = np.asarray(patients)
        known = {p: bool((labels[patient_arr == p] >= 0).all()) for p in ids}
        patient_rows = [
            {
                "patient": pid,
                "label": int(patient_labels[k]) if known[pid] else -1,
                "slices": patients.count(pid),
                "positive_slices": int((probs[patient_arr == pid] >= self.threshold).sum()),
                "majority_score": float(majority[k]),
                "majority_verdict": int(majority[k] >= 0.5),
                "mean_probability": float(mean[k]),
                "mean_verdict": int(mean[k] >= self.threshold),
                "max_probability": float(top[k]),
                "max_verdict": int(top[k] >= self.threshold),
            }  # fmt: skip
            for k, pid in enumerate(ids)
        ]
        write_table(patient_rows, out / "patients.csv",
                    ["patient", "label", "slices", "positive_slices", "majority_score", "majority_verdict",
                     "mean_probability", "mean_verdict", "max_probability", "max_verdict"],
                    numeric=["majority_score", "mean_probability", "max_probability"],
                    integer=["label", "slices", "positive_slices", "majority_verdict", "mean_verdict",
                             "max_verdict"])  # fmt: skip
        skipped = [{"study": s, "reason": r} for s, r in getattr(self.dataset, "skipped", [])]
        write_table(skipped, out / "skipped.csv", ["study", "reason"])
        metrics: dict[str, Any] = {"threshold": self.threshold, "n_slices": len(order), "n_patients": len(ids),
                                   "n_skipped_studies": len(skipped)}  # fmt: skip
        labelled = labels >= 0
        if labelled.any():
            y = labels[labelled]
            metrics["slice"] = self._level(y, probs[labelled], patient_arr[labelled].tolist(), self.threshold)
            keep = np.asarray([known[p] for p in ids])
            for rule, rule_scores in by_rule.items():
                # the vote's score is the share of positive slices: a verdict at half of them, whatever the slice
                # threshold; the others are slice probabilities, called at the slice threshold
                cut = 0.5 if rule == "majority" else self.threshold
                metrics[f"patient_{rule}"] = self._level(patient_labels[keep], rule_scores[keep], None, cut)
            for level in PATIENT_LEVELS:
                save_confusion_matrix_png(metrics[level]["confusion"], out / f"confusion_{level}.png",
                                          class_names=("no cancer", "cancer"), title=level.replace("_", " "))  # fmt: skip
            curves = {"slice": (y, probs[labelled]), "patient (mean)": (patient_labels[keep], mean[keep])}
            curves = {k: v for k, v in curves.items() if np.unique(v[0]).size == 2}
            if curves:
                save_roc_png(curves, out / "roc.png", title="PET/CT classification")
        with atomic_file(out / "metrics.json") as tmp:
            tmp.write_text(json.dumps(_clean(metrics), indent=2) + "\n", encoding="utf-8")
        logger.info("classification report in %s: %s", out, {k: metrics[k].get("accuracy") for k in metrics
                                                               if isinstance(metrics[k], dict)})  # fmt: skip
        self.metrics = metrics
        return metrics
