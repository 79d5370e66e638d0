"""ClassificationReportWriter: slice scores -> slices.csv, patient verdicts, metrics with CIs, PNGs."""

from __future__ import annotations

import csv
import json
from types import SimpleNamespace

import torch

from lungcad_transforms.handlers.classification_report import (
    ClassificationReportWriter,
    positive_class_scores,
)


def _dataset():
    # patient A: cancer on slices 1-2 of 4; B: no cancer; C: no mask (label unknown)
    labels = {"A": [0, 1, 1, 0], "B": [0, 0, 0, 0], "C": [-1, -1, -1, -1]}
    records = [
        {"patient": p, "study": p, "slice": k, "label": v}
        for p, ls in labels.items()
        for k, v in enumerate(ls)
    ]
    return SimpleNamespace(records=records, skipped=[("D", "study has only CT")])


def test_report_files_and_patient_verdicts(tmp_path):
    ds = _dataset()
    probs = [0.2, 0.9, 0.8, 0.6, 0.1, 0.7, 0.2, 0.1, 0.9, 0.9, 0.9, 0.9]
    writer = ClassificationReportWriter(ds, tmp_path, n_bootstrap=20)
    metrics = writer.write(dict(enumerate(probs)))
    with open(tmp_path / "patients.csv", newline="") as fh:
        patients = {r["patient"]: r for r in csv.DictReader(fh)}
    assert patients["A"]["majority_verdict"] == "1" and patients["A"]["positive_slices"] == "3"
    assert patients["B"]["majority_verdict"] == "0" and float(patients["B"]["majority_score"]) == 0.25
    assert patients["C"]["label"] == "-1" and patients["C"]["mean_verdict"] == "1"
    # metrics only over the labelled patients / slices: A (TP) and B (TN)
    assert metrics["patient_majority"]["confusion"] == [[1, 0], [0, 1]]
    # the whole-stack rule: B's hottest slice (0.7) calls it positive where the vote does not
    assert patients["B"]["max_verdict"] == "1" and float(patients["B"]["max_probability"]) == 0.7
    assert metrics["patient_max"]["confusion"] == [[0, 1], [0, 1]]
    assert metrics["slice"]["confusion"] == [[4, 2], [0, 2]] and metrics["slice"]["n"] == 8
    assert metrics["n_skipped_studies"] == 1
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["slice"]["ci95"]["accuracy"][0] <= 0.75 <= saved["slice"]["ci95"]["accuracy"][1]
    pngs = [f"confusion_{level}.png" for level in ("slice", "patient_mean", "patient_max")] + ["roc.png"]
    for name in ("slices.csv", "skipped.csv", *pngs):
        assert (tmp_path / name).stat().st_size > 0
    assert "study has only CT" in (tmp_path / "skipped.csv").read_text()


def test_scores_are_read_from_batched_and_decollated_engine_state():
    batched = SimpleNamespace(state=SimpleNamespace(batch={"index": torch.tensor([4, 7])},
                                                    output={"pred": torch.tensor([[0.3, 0.7], [0.9, 0.1]])}))  # fmt: skip
    assert positive_class_scores(batched) == ([4, 7], [0.699999988079071, 0.10000000149011612])
    decollated = SimpleNamespace(state=SimpleNamespace(batch=[{"index": torch.tensor(2)}],
                                                       output=[{"pred": torch.tensor([0.25, 0.75])}]))  # fmt: skip
    assert positive_class_scores(decollated) == ([2], [0.75])
