"""The LUNA16 annotations CSV writer."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from lungcad_transforms.data.tables import write_annotations_csv
from lungcad_transforms.errors import InputError


def test_annotations_csv(tmp_path: Path):
    rows = [
        {
            "seriesuid": "1.2.3",
            "coordX": -128.6994211,
            "coordY": -175.3192718,
            "coordZ": -298.3875064,
            "diameter_mm": 5.65,
        },
        {
            "seriesuid": "1.2.4",
            "coordX": 103.78,
            "coordY": -211.93,
            "coordZ": -227.12,
            "diameter_mm": 4.22,
            "kind": "solid",
        },
    ]
    path = write_annotations_csv(rows, tmp_path / "annotations.csv")
    with open(path, newline="") as f:
        table = list(csv.reader(f))
    assert table[0] == ["seriesuid", "coordX", "coordY", "coordZ", "diameter_mm"]
    assert [float(v) for v in table[1][1:]] == [-128.6994211, -175.3192718, -298.3875064, 5.65]
    coords = pytest.importorskip("lungcad_transforms.data")
    back = coords.read_annotations(path)
    assert [r["seriesuid"] for r in back] == ["1.2.3", "1.2.4"] and back[1]["coordX"] == pytest.approx(103.78)
    with pytest.raises(InputError, match="row 0: missing key 'kind'"):
        write_annotations_csv(rows, tmp_path / "kinds.csv", extra_columns=("kind",))
    with pytest.raises(InputError, match="row 0: coordZ is nan, not a finite number"):
        write_annotations_csv([{**rows[0], "coordZ": float("nan")}], tmp_path / "nan.csv")
    assert not (tmp_path / "kinds.csv").exists() and not (tmp_path / "nan.csv").exists()
