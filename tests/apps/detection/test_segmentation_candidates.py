"""FP-reduction training candidates labelled from the segmentation bundle's own candidates."""

from __future__ import annotations

from pathlib import Path

import pytest

from lungcad_transforms.apps.detection.segmentation_candidates import label_candidates
from lungcad_transforms.data.tables import read_candidates, write_annotations_csv, write_results_csv
from lungcad_transforms.errors import InputError


def _row(uid, x, y, z, **extra):
    return {"seriesuid": uid, "coordX": x, "coordY": y, "coordZ": z, **extra}


def test_hits_false_positives_missed_nodules_and_excluded_regions(tmp_path: Path):
    annotations = write_annotations_csv(
        [_row("a", 0.0, 0.0, 0.0, diameter_mm=10.0), _row("a", 50.0, 0.0, 0.0, diameter_mm=6.0),
         _row("b", 0.0, 0.0, 0.0, diameter_mm=8.0)], tmp_path / "annotations.csv",
    )  # fmt: skip
    excluded = write_annotations_csv([_row("b", 30.0, 0.0, 0.0, diameter_mm=10.0)], tmp_path / "excluded.csv")
    results = write_results_csv(
        [_row("a", 4.9, 0.0, 0.0, probability=0.9),  # inside the 5 mm radius: a hit
         _row("a", 5.0, 0.0, 0.0, probability=0.8),  # on the radius: not a hit (LUNA16's strict <)
         _row("a", 20.0, 20.0, 0.0, probability=0.7),  # a false positive
         _row("b", 31.0, 0.0, 0.0, probability=0.6)],  # in an excluded region: left out
        tmp_path / "candidates.csv",
    )  # fmt: skip
    rows = label_candidates(results, annotations, tmp_path / "labelled.csv", excluded=excluded)
    kinds = [(r["seriesuid"], r["class"], r["kind"]) for r in rows]
    assert kinds == [
        ("a", 1, "segmentation_hit"),
        ("a", 0, "segmentation_false_positive"),
        ("a", 0, "segmentation_false_positive"),
        ("a", 1, "missed_nodule"),  # the 6 mm nodule at x = 50 that no candidate hit
        ("b", 1, "missed_nodule"),
    ]
    written = read_candidates(tmp_path / "labelled.csv")
    assert [r["class"] for r in written] == [1, 0, 0, 1, 1]
    assert (
        label_candidates(results, annotations, add_missed=False)[-1]["kind"] == "segmentation_false_positive"
    )


def test_a_missing_table_is_named(tmp_path: Path):
    with pytest.raises(InputError, match="candidates.csv"):
        label_candidates(tmp_path / "candidates.csv", tmp_path / "annotations.csv")


def test_several_candidate_tables_are_labelled_as_one(tmp_path: Path):
    annotations = write_annotations_csv(
        [_row("b", 0.0, 0.0, 0.0, diameter_mm=8.0)], tmp_path / "annotations.csv"
    )
    train = write_results_csv([_row("a", 9.0, 9.0, 9.0, probability=0.4)], tmp_path / "train.csv")
    val = write_results_csv([_row("b", 0.5, 0.0, 0.0, probability=0.5)], tmp_path / "val.csv")
    rows = label_candidates([train, val], annotations)
    assert [(r["seriesuid"], r["class"], r["kind"]) for r in rows] == [
        ("a", 0, "segmentation_false_positive"),
        ("b", 1, "segmentation_hit"),  # hit in the second table: not added again as missed
    ]
