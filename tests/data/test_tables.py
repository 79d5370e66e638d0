"""The CSV tables: the LUNA16 header forms, write -> read round trips, and one message form for bad rows
(``"<file>: line N: <problem>"`` raised or skipped, ``"<file>: row i: <problem>"`` for rows in memory)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from lungcad_transforms.data.csv_table import (
    check_records,
    format_value,
    read_csv_rows,
    read_table,
    write_table,
)
from lungcad_transforms.data.tables import (
    ANNOTATION_COLUMNS,
    CANDIDATE_COLUMNS,
    FROC_CURVE_COLUMNS,
    LABELLED_CANDIDATE_COLUMNS,
    RESULTS_COLUMNS,
    SEGMENTATION_CANDIDATE_COLUMNS,
    read_annotations,
    read_candidates,
    read_candidates_lenient,
    read_point_table,
    read_seriesuids,
    write_annotations_csv,
    write_candidates_csv,
    write_results_csv,
    write_seriesuids,
)
from lungcad_transforms.errors import InputError

UID = "1.3.6.1.4.1.14519.5.2.1.6279.6001.100225287222365663678666836860"
UID2 = "1.3.6.1.4.1.14519.5.2.1.6279.6001.100332161840553388986847034053"


def header_of(path: Path) -> list[str]:
    with open(path, newline="") as handle:
        return next(csv.reader(handle))


def test_columns_are_the_official_luna16_header_forms():
    assert ",".join(ANNOTATION_COLUMNS) == "seriesuid,coordX,coordY,coordZ,diameter_mm"
    assert ",".join(LABELLED_CANDIDATE_COLUMNS) == "seriesuid,coordX,coordY,coordZ,class"
    assert ",".join(RESULTS_COLUMNS) == "seriesuid,coordX,coordY,coordZ,probability"
    assert CANDIDATE_COLUMNS == ("seriesuid", "coordX", "coordY", "coordZ")  # what every table needs
    assert SEGMENTATION_CANDIDATE_COLUMNS[:5] == RESULTS_COLUMNS  # the official script reads it unchanged
    assert FROC_CURVE_COLUMNS == ("fp_per_scan", "sensitivity", "threshold")


def test_read_annotations_official_form_with_bom_crlf_and_blank_lines(tmp_path):
    path = tmp_path / "annotations.csv"
    path.write_bytes(
        b"\xef\xbb\xbfseriesuid,coordX,coordY,coordZ,diameter_mm\r\n"
        + f"{UID},-128.6994211,-175.3192718,-298.3875064,5.651470635\r\n\r\n".encode()
        + f"{UID2}, 103.78 ,-211.93,-227.12,4.22\r\n".encode()
    )
    rows = read_annotations(path)
    assert rows == [
        {"seriesuid": UID, "coordX": -128.6994211, "coordY": -175.3192718, "coordZ": -298.3875064,
         "diameter_mm": 5.651470635},
        {"seriesuid": UID2, "coordX": 103.78, "coordY": -211.93, "coordZ": -227.12, "diameter_mm": 4.22},
    ]  # fmt: skip
    assert all(type(v) is float for row in rows for k, v in row.items() if k != "seriesuid")
    path.write_text("seriesuid,coordX,coordY,coordZ,diameter_mm\n1.2,1,2,3,4\n1.2,1,2,3,-1\n")
    with pytest.raises(InputError, match=r"annotations.csv: line 3: diameter_mm is negative \('-1'\)"):
        read_annotations(path)


def test_read_candidates_labelled_and_results_forms(tmp_path):
    path = tmp_path / "candidates.csv"
    path.write_text("seriesuid,coordX,coordY,coordZ,class\n1.2,-56.08,-67.85,-311.92,0\n1.2,1,2,3,1.0\n")
    rows = read_candidates(path)
    assert [r["class"] for r in rows] == [0, 1] and all(type(r["class"]) is int for r in rows)
    path.write_text("seriesuid,coordX,coordY,coordZ,probability,lobe\n1.2,1,2,3,0.25,RUL\n")
    assert read_candidates(path) == [
        {"seriesuid": "1.2", "coordX": 1.0, "coordY": 2.0, "coordZ": 3.0, "probability": 0.25, "lobe": "RUL"}
    ]
    path.write_text("seriesuid,coordX,coordY,coordZ,class\n1.2,1,2,3,0\n1.2,1,2,3,2.5\n")
    with pytest.raises(InputError, match=r"candidates.csv: line 3: class is '2.5', not an integer") as info:
        read_candidates(path)
    assert info.value.path == str(path)
    path.write_text("seriesuid,coordX,coordY,coordZ,coordX,class\n")
    with pytest.raises(InputError, match="line 1: header repeats column"):
        read_candidates(path)


def test_read_candidates_lenient_skips_with_the_strict_message(tmp_path):
    path = tmp_path / "candidates.csv"
    text = "seriesuid,coordX,coordY,coordZ,probability\n1.2,1,2,3,0.5\n1.2,1,abc,3,0.5\n1.2,4,5,6,0.7\n"
    path.write_text(text)
    rows, problems = read_candidates_lenient(path)
    assert [(r["line"], r["coordX"]) for r in rows] == [(2, 1.0), (4, 4.0)]
    assert problems == [f"{path}: line 3: coordY is 'abc', not a number (row skipped)"]
    # the same row, read strictly, raises the same message
    with pytest.raises(InputError) as info:
        read_candidates(path)
    assert f"{info.value} (row skipped)" == problems[0]
    # a table of centres alone is enough for scoring
    path.write_text("seriesuid,coordX,coordY,coordZ\n1.2,1,2,3\n,1,2,3\n")
    rows, problems = read_candidates_lenient(path)
    assert len(rows) == 1 and problems == [f"{path}: line 3: seriesuid is empty (row skipped)"]


def test_read_seriesuids_file_and_list(tmp_path):
    path = tmp_path / "seriesuids.csv"
    path.write_text(f"{UID}\n\n{UID2}\n")
    assert read_seriesuids(path) == read_seriesuids([UID, UID2]) == [UID, UID2]
    with pytest.raises(InputError, match="<seriesuids>: item 1: seriesuid is empty"):
        read_seriesuids([UID, " "])
    with pytest.raises(InputError, match="seriesuids file does not exist"):
        read_seriesuids(tmp_path / "missing.csv")


def test_read_point_table_from_file_and_rows_agree(tmp_path):
    rows = [
        {"seriesuid": UID, "coordX": -1.5, "coordY": 2.25, "coordZ": 3.0, "diameter_mm": -1.0},
        {"seriesuid": UID2, "coordX": 4.0, "coordY": 5.0, "coordZ": 6.0, "diameter_mm": 7.5},
    ]
    path = tmp_path / "annotations_excluded.csv"
    path.write_text("seriesuid,coordX,coordY,coordZ,diameter_mm\n" + "".join(
        f"{r['seriesuid']},{r['coordX']},{r['coordY']},{r['coordZ']},{r['diameter_mm']}\n" for r in rows
    ))  # fmt: skip
    from_file = read_point_table(path, "diameter_mm", "excluded annotations")
    from_rows = read_point_table(rows, "diameter_mm", "excluded annotations")
    assert from_file.uids == from_rows.uids == [UID, UID2]
    np.testing.assert_array_equal(from_file.xyz, from_rows.xyz)
    np.testing.assert_array_equal(from_file.value, [-1.0, 7.5])  # LUNA16's "unknown diameter" is kept
    assert (from_file.source, from_rows.source) == (str(path), "<excluded annotations>")
    with pytest.raises(InputError, match=r"<results>: row 1: coordZ is inf, not a finite number"):
        read_point_table([{**rows[0], "probability": 0.5}, {**rows[1], "coordZ": np.inf, "probability": 0.5}],
                         "probability", "results")  # fmt: skip
    empty = read_point_table([], "probability", "results")
    assert empty.xyz.shape == (0, 3) and empty.value.shape == (0,)


def test_write_annotations_csv_round_trip(tmp_path):
    rows = [
        {"seriesuid": UID, "coordX": -128.6994211, "coordY": np.float32(-175.5), "coordZ": 2, "diameter_mm": 5.65,
         "kind": "solid"},
    ]  # fmt: skip
    path = write_annotations_csv(rows, tmp_path / "annotations.csv", extra_columns=("kind",))
    assert header_of(path) == [*ANNOTATION_COLUMNS, "kind"]
    assert path.read_text().splitlines()[1] == f"{UID},-128.6994211,-175.5,2.0,5.65,solid"
    (back,) = read_annotations(path)
    assert back == {**rows[0], "coordY": -175.5, "coordZ": 2.0}
    with pytest.raises(InputError, match=r"bad.csv: row 0: diameter_mm is negative"):
        write_annotations_csv([{**rows[0], "diameter_mm": -2.0}], tmp_path / "bad.csv")
    assert not (tmp_path / "bad.csv").exists()


def test_write_candidates_csv_round_trip(tmp_path):
    rows = [
        {
            "seriesuid": UID,
            "coordX": 1.0,
            "coordY": 2.0,
            "coordZ": 3.0,
            "class": np.int64(1),
            "kind": "nodule",
        },
        {"seriesuid": UID, "coordX": 4.0, "coordY": 5.0, "coordZ": 6.0, "class": 0},
    ]
    path = write_candidates_csv(rows, tmp_path / "candidates.csv")
    assert header_of(path) == [*LABELLED_CANDIDATE_COLUMNS, "kind"]
    back = read_candidates(path)
    assert [(r["class"], r["kind"]) for r in back] == [(1, "nodule"), (0, "")]
    with pytest.raises(InputError, match="row 1: class is 0.5, not an integer"):
        write_candidates_csv([rows[0], {**rows[1], "class": 0.5}], tmp_path / "bad.csv")
    assert not (tmp_path / "bad.csv").exists()


def test_write_results_csv_round_trip_keeps_every_bit(tmp_path):
    rng = np.random.default_rng(0)
    rows = [
        {"seriesuid": UID, "coordX": x, "coordY": y, "coordZ": z, "probability": p}
        for x, y, z, p in rng.normal(size=(20, 4)) * [100, 100, 100, 1e-3]
    ]
    path = write_results_csv(rows, tmp_path / "results.csv")
    assert header_of(path) == list(RESULTS_COLUMNS)
    table = read_point_table(path, "probability", "results")
    np.testing.assert_array_equal(table.value, [r["probability"] for r in rows])
    np.testing.assert_array_equal(table.xyz[:, 0], [r["coordX"] for r in rows])
    assert write_results_csv([], tmp_path / "none.csv").read_text() == ",".join(RESULTS_COLUMNS) + "\n"
    with pytest.raises(InputError, match="row 0: seriesuid is empty"):
        write_results_csv([{**rows[0], "seriesuid": " "}], tmp_path / "bad.csv")


def test_write_seriesuids_round_trip(tmp_path):
    path = write_seriesuids([UID, UID2], tmp_path / "seriesuids.csv")
    assert read_seriesuids(path) == [UID, UID2]
    with pytest.raises(InputError, match="row 2: seriesuid .* already listed on row 0"):
        write_seriesuids([UID, UID2, UID], tmp_path / "twice.csv")
    assert not (tmp_path / "twice.csv").exists()


# ------------------------------------------------------------------------------------------------
# the core: data/csv_table.py
# ------------------------------------------------------------------------------------------------
def test_read_csv_rows_numbers_physical_lines(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text('a,b\n\n"x\ny",2\n  , \n3,4\n')
    assert read_csv_rows(path) == [(1, ["a", "b"]), (4, ["x\ny", "2"]), (6, ["3", "4"])]
    path.write_bytes(b"a,b\n\xff\xfe,1\n")
    with pytest.raises(InputError, match="is not a text CSV file"):
        read_csv_rows(path)


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "empty table file: expected a header line seriesuid,x"),
        ("seriesuid,y\n", r"line 1: header 'seriesuid,y' lacks column\(s\) x"),
        ("seriesuid,x,n\n1.2,1\n", r"line 2: expected 3 fields \(seriesuid,x,n\), found 2"),
        ("seriesuid,x,n\n1.2,1,0,9\n", r"line 2: expected 3 fields .*, found 4"),
        ("seriesuid,x,n\n 1.2 ,1,0\n1.2,-inf,0\n", r"line 3: x is '-inf', not a finite number"),
        ("seriesuid,x,n\n1.2,1,0\n1.2,1,1e-3\n", r"line 3: n is '1e-3', not an integer"),
        ("seriesuid,x,n\n1.2,1,-1\n", r"line 2: n is negative \('-1'\)"),
        ("seriesuid,x,n\n  ,1,0\n", r"line 2: seriesuid is empty"),
    ],
)
def test_read_table_raises_file_and_line(tmp_path, text, message):
    path = tmp_path / "t.csv"
    path.write_text(text)
    spec = dict(numeric=["x"], integer=["n"], non_negative=["n"], what="table")
    with pytest.raises(InputError, match=message) as info:
        read_table(path, ["seriesuid", "x"], **spec)
    assert info.value.path == str(path) and str(info.value).startswith(f"{path}: ")


def test_read_table_skips_bad_rows_and_types_the_rest(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("seriesuid,x,n,note\n1.2,1.5,3,a\n1.2,nan,3,b\n1.2,2.5,4\n\n1.3,3.5,5,c\n")
    table = read_table(path, ["seriesuid"], numeric=["x"], integer=["n"], on_bad_row="skip")
    assert len(table) == 2 and table.lines.tolist() == [2, 6]
    assert table.columns["x"].dtype == np.float64 and table.columns["n"].dtype == np.int64
    assert table.rows(with_line=True) == [
        {"seriesuid": "1.2", "x": 1.5, "n": 3, "note": "a", "line": 2},
        {"seriesuid": "1.3", "x": 3.5, "n": 5, "note": "c", "line": 6},
    ]
    assert [p.split(": ", 2)[1] for p in table.problems] == ["line 3", "line 4"]
    with pytest.raises(ValueError, match="on_bad_row"):
        read_table(path, ["seriesuid"], on_bad_row="ignore")


def test_check_records_names_the_row():
    good = {"seriesuid": "1.2", "x": np.float32(1.5), "n": 2}
    assert check_records([good], ["seriesuid", "x"], numeric=["x"], integer=["n"]) == [good]
    with pytest.raises(InputError, match=r"<t>: row 1: missing key 'x'"):
        check_records([good, {"seriesuid": "1.2"}], ["seriesuid", "x"], source="<t>")
    with pytest.raises(InputError, match=r"row 0: x is None, not a number"):
        check_records([{**good, "x": None}], ["seriesuid"], numeric=["x"])


def test_format_value_is_full_precision():
    assert format_value(0.1 + 0.2) == "0.30000000000000004" and float(format_value(np.float32(0.1))) == float(
        np.float32(0.1)
    )
    assert (format_value(np.int32(7)), format_value(None), format_value("solid")) == ("7", "", "solid")


def test_write_table_is_atomic_and_formats_numbers_one_way(tmp_path):
    path = tmp_path / "out" / "t.csv"
    rows = [{"a": 2, "b": np.int64(3), "c": float("inf"), "d": "x,y"}, {"a": "1.5", "b": 4.0}]
    write_table(rows, path, ["a", "b", "c", "d"], required=["a", "b"], numeric=["a"], integer=["b"])
    assert path.read_text() == 'a,b,c,d\n2.0,3,inf,"x,y"\n1.5,4,,\n'
    with pytest.raises(InputError, match=r"t.csv: row 1: a is 'abc', not a number"):
        write_table([rows[0], {"a": "abc", "b": 1}], path, ["a", "b"], numeric=["a"])
    assert path.read_text().startswith("a,b,c,d\n")  # the old file is left whole
    assert sorted(p.name for p in path.parent.iterdir()) == ["t.csv"]
