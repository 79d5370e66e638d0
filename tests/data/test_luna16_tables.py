"""LUNA16 results and seriesuids tables: official form at full precision, malformed rows named by file and line."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from luna16_cases import ANN_COLS, S0, S1, UNLISTED, mark, nodule, write_csv

from lungcad_transforms.data.tables import read_seriesuids, write_results_csv
from lungcad_transforms.errors import InputError
from lungcad_transforms.metrics.froc import froc_score


def test_write_results_csv_is_luna16_form_at_full_precision(tmp_path):
    rows = [
        {
            "seriesuid": S0,
            "coordX": -128.6994211,
            "coordY": -175.3192718,
            "coordZ": -298.3875064,
            "probability": 0.1 + 0.2,
            "diameter_mm": 5.65,
            "label": "solid",
        },
        {
            "seriesuid": S1,
            "coordX": np.float32(1.5),
            "coordY": 2,
            "coordZ": 3.0,
            "probability": np.float64(0.5),
        },
    ]
    path = write_results_csv(rows, tmp_path / "out" / "results.csv")
    with open(path, newline="") as fh:
        table = list(csv.reader(fh))
    assert table[0] == ["seriesuid", "coordX", "coordY", "coordZ", "probability", "diameter_mm", "label"]
    assert float(table[1][4]) == 0.1 + 0.2 and table[1][6] == "solid" and table[2][5:] == ["", ""]
    assert [p.name for p in path.parent.iterdir()] == ["results.csv"]


def test_write_results_csv_refuses_bad_rows_and_writes_nothing(tmp_path):
    bad = [mark(S0, 0, 0, 0, 0.5), mark(S0, 0, float("nan"), 0, 0.5)]
    with pytest.raises(InputError, match="row 1: coordY is nan, not a finite number"):
        write_results_csv(bad, tmp_path / "results.csv")
    with pytest.raises(InputError, match="row 0: missing key 'probability'"):
        write_results_csv(
            [{"seriesuid": S0, "coordX": 0, "coordY": 0, "coordZ": 0}], tmp_path / "results.csv"
        )
    assert list(tmp_path.iterdir()) == []


def test_seriesuids_file_rules(tmp_path):
    plain = tmp_path / "plain.csv"
    plain.write_text(f"{S0}\n\n{S1}\n")
    headed = tmp_path / "headed.csv"
    headed.write_text(f"seriesuid\n{S0}\n{S1}\n")
    assert read_seriesuids(plain) == read_seriesuids(headed) == [S0, S1]
    twice = tmp_path / "twice.csv"
    twice.write_text(f"{S0}\n{S1}\n{S0}\n")
    with pytest.raises(InputError, match=r"twice.csv: line 3: seriesuid .* already listed on line 1"):
        read_seriesuids(twice)
    (tmp_path / "empty.csv").write_text("\n")
    with pytest.raises(InputError, match="lists no scan"):
        read_seriesuids(tmp_path / "empty.csv")


@pytest.mark.parametrize(
    "results_text, message",
    [
        ("seriesuid,coordX,coordY,coordZ\n{u},1,2,3\n", r"line 1: header .* lacks column\(s\) probability"),
        (
            "seriesuid,coordX,coordY,coordZ,probability\n{u},1,2,3,0.5\n{u},1,abc,3,0.5\n",
            "line 3: coordY is 'abc', not a number",
        ),
        (
            "seriesuid,coordX,coordY,coordZ,probability\n{u},1,2,3,0.5\n\n{u},1,2,3,nan\n",
            "line 4: probability is 'nan', not a finite number",
        ),
        ("seriesuid,coordX,coordY,coordZ,probability\n{u},1,2\n", "line 2: expected 5 fields .*, found 3"),
        ("", "empty results file"),
    ],
)
def test_malformed_results_name_file_and_line(tmp_path, results_text, message):
    ann = write_csv(tmp_path / "annotations.csv", ANN_COLS, [nodule(S0, 0, 0, 0)])
    res = tmp_path / "results.csv"
    res.write_text(results_text.format(u=S0))
    with pytest.raises(InputError, match=message) as info:
        froc_score(ann, res, [S0])
    assert info.value.path == str(res)


def test_other_bad_inputs(tmp_path):
    with pytest.raises(InputError, match="annotations file does not exist"):
        froc_score(tmp_path / "missing.csv", [], [S0])
    with pytest.raises(InputError, match="no included nodule"):
        froc_score([nodule(UNLISTED, 0, 0, 0)], [], [S0])
    with pytest.raises(InputError, match="row 0: missing key 'diameter_mm'"):
        froc_score([mark(S0, 0, 0, 0, 0.5)], [], [S0])
