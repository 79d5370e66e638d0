"""Every CSV lungcad reads or writes: LUNA16 annotations, candidates, results, excluded, seriesuids.

The columns are defined here once; every reader sits on :func:`~lungcad_transforms.data.csv_table.read_table`
and every writer on :func:`~lungcad_transforms.data.csv_table.write_table`, so a malformed row gets one
message everywhere: ``"<file>: line N: <problem>"`` (``"<file>: row i: <problem>"`` for rows in memory).
World coordinates are LUNA16's: ITK physical space, LPS, millimetres.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lungcad_transforms.data.csv_table import check_records, read_csv_rows, read_table, write_table
from lungcad_transforms.errors import InputError
from lungcad_transforms.utils.atomic import atomic_file

__all__ = [
    "COORD_COLUMNS",
    "CANDIDATE_COLUMNS",
    "ANNOTATION_COLUMNS",
    "LABELLED_CANDIDATE_COLUMNS",
    "RESULTS_COLUMNS",
    "SEGMENTATION_CANDIDATE_COLUMNS",
    "FROC_CURVE_COLUMNS",
    "SKIPPED_CANDIDATE_COLUMNS",
    "GRADCAM_COLUMNS",
    "GRADCAM_ANNOTATED_COLUMNS",
    "Records",
    "TableSource",
    "PointTable",
    "read_annotations",
    "read_candidates",
    "read_candidates_lenient",
    "read_seriesuids",
    "read_point_table",
    "write_annotations_csv",
    "write_candidates_csv",
    "write_results_csv",
    "write_seriesuids",
]

COORD_COLUMNS: tuple[str, ...] = ("coordX", "coordY", "coordZ")

# what every candidate, results or annotations table has: the scan and the centre (LPS mm)
CANDIDATE_COLUMNS: tuple[str, ...] = ("seriesuid", *COORD_COLUMNS)

# LUNA16 annotations.csv / annotations_excluded.csv
ANNOTATION_COLUMNS: tuple[str, ...] = (*CANDIDATE_COLUMNS, "diameter_mm")

# LUNA16 candidates.csv / candidates_V2.csv
LABELLED_CANDIDATE_COLUMNS: tuple[str, ...] = (*CANDIDATE_COLUMNS, "class")

# LUNA16 results form, read unchanged by the official evaluation script
RESULTS_COLUMNS: tuple[str, ...] = (*CANDIDATE_COLUMNS, "probability")

# the candidate table the segmentation bundle writes: results form plus size
SEGMENTATION_CANDIDATE_COLUMNS: tuple[str, ...] = (*RESULTS_COLUMNS, "diameter_mm", "volume_mm3")

# froc_curve.csv of the FROC report
FROC_CURVE_COLUMNS: tuple[str, ...] = ("fp_per_scan", "sensitivity", "threshold")

# skipped.csv beside a results table: candidates a dataset could not cut a patch for, and why
SKIPPED_CANDIDATE_COLUMNS: tuple[str, ...] = (*CANDIDATE_COLUMNS, "reason")

# gradcam.csv of the Grad-CAM saver: per explained candidate, its score, the heatmap peak and the files
GRADCAM_COLUMNS: tuple[str, ...] = (
    *RESULTS_COLUMNS,
    "label",
    "peakX",
    "peakY",
    "peakZ",
    "heatmap",
    "montage",
)
# the columns gradcam.csv adds when the saver is given annotations
GRADCAM_ANNOTATED_COLUMNS: tuple[str, ...] = ("candidate_on_nodule", "peak_inside_nodule")

_CANDIDATE_NUMERIC = (*COORD_COLUMNS, "probability", "diameter_mm")
# what makes a candidate row well formed, the same for the strict and the lenient reader
_CANDIDATE_ROW_RULES = {
    "numeric": _CANDIDATE_NUMERIC,
    "integer": ["class"],
    "non_negative": ["diameter_mm"],
    "what": "candidates",
}

Records = Iterable[Mapping[str, Any]]

TableSource = str | os.PathLike | Records


# --------------------------------------------------------------------------------------------------
# readers
# --------------------------------------------------------------------------------------------------
def read_annotations(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Read a LUNA16 ``annotations.csv``: ``seriesuid,coordX,coordY,coordZ,diameter_mm``.

    Args:
        path: the CSV file. Further columns after the five are allowed and kept as text.

    Returns:
        one dict per nodule, in file order: ``seriesuid`` (str), ``coordX``, ``coordY``, ``coordZ`` (float,
        LPS mm), ``diameter_mm`` (float).

    Raises:
        InputError: the file is missing or empty, the header lacks a column, or a row has the wrong number
            of fields, an empty seriesuid, a value that is not a finite number or a negative diameter
            (``"<file>: line N: <problem>"``).

    Examples:
        >>> rows = read_annotations("annotations.csv")  # doctest: +SKIP
        >>> rows[0]  # doctest: +SKIP
        {'seriesuid': '1.3.6.1.4.1.14519.5.2.1.6279.6001.1002...', 'coordX': -128.699, 'coordY': -175.319,
         'coordZ': -298.387, 'diameter_mm': 5.651}
    """
    numeric = (*COORD_COLUMNS, "diameter_mm")
    table = read_table(path, ANNOTATION_COLUMNS, numeric, non_negative=["diameter_mm"], what="annotations")
    return table.rows()


def read_candidates(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Read a LUNA16 ``candidates.csv`` (``...,class``) or a results file (``...,probability``).

    Args:
        path: the CSV file: ``seriesuid,coordX,coordY,coordZ`` then ``class`` and/or ``probability``;
            an optional ``diameter_mm`` column is read as a number, further columns are kept as text.

    Returns:
        one dict per candidate, in file order: ``seriesuid`` (str), ``coordX``, ``coordY``, ``coordZ``
        (float, LPS mm), ``class`` (int) and/or ``probability`` (float), as present in the file.

    Raises:
        InputError: the file is missing or empty, the header lacks a column (or has neither ``class``
            nor ``probability``), or a row is malformed (``"<file>: line N: <problem>"``).

    Examples:
        >>> rows = read_candidates("candidates_V2.csv")  # doctest: +SKIP
        >>> rows[0]["class"], rows[0]["coordZ"]  # doctest: +SKIP
        (0, -377.42)
    """
    table = read_table(path, CANDIDATE_COLUMNS, one_of=("class", "probability"), **_CANDIDATE_ROW_RULES)
    return table.rows()


def read_candidates_lenient(path: str | os.PathLike) -> tuple[list[dict[str, Any]], list[str]]:
    """Read a candidates / results CSV as :func:`read_candidates` does, skipping malformed rows.

    For inference on a user's table (the segmentation bundle's ``candidates.csv`` with
    ``probability,diameter_mm`` columns, or a LUNA16 ``candidates.csv``): a malformed row is reported and
    skipped, the others are kept. Neither ``class`` nor ``probability`` is required. Training uses the
    strict :func:`read_candidates`.

    Args:
        path: the CSV; needs the columns ``seriesuid,coordX,coordY,coordZ``.

    Returns:
        ``(rows, problems)``: the good rows as :func:`read_candidates` returns them, each with its
        ``line`` number added; and one ``"<file>: line N: <problem> (row skipped)"`` per skipped row.

    Raises:
        InputError: the file is missing, empty, not text, or its header lacks a required column.

    Examples:
        >>> rows, problems = read_candidates_lenient("candidates.csv")  # doctest: +SKIP
        >>> problems  # doctest: +SKIP
        ["candidates.csv: line 7: coordY is 'abc', not a number (row skipped)"]
    """
    table = read_table(path, CANDIDATE_COLUMNS, on_bad_row="skip", **_CANDIDATE_ROW_RULES)
    return table.rows(with_line=True), table.problems


def read_seriesuids(source: str | os.PathLike | Iterable[str]) -> list[str]:
    """Read the scan ids an evaluation covers (LUNA16 ``seriesuids.csv``: one id per line, no header).

    The first field of each non-blank line is the id. A first line reading ``seriesuid`` is taken for a
    header and skipped (a DICOM UID is digits and dots, so it cannot be a scan). An id listed twice
    raises ``InputError``: counting a scan twice would change the false positives per scan.

    Args:
        source: path of the CSV, or the ids themselves.

    Returns:
        the ids in file order.

    Raises:
        InputError: missing file, no ids, an id listed twice.

    Examples:
        >>> read_seriesuids(["1.3.6.1.4.1.14519.5.2.1.6279.6001.100225287222365663678666836860"])
        ['1.3.6.1.4.1.14519.5.2.1.6279.6001.100225287222365663678666836860']
    """
    if isinstance(source, (str, os.PathLike)):
        where, label = os.fspath(source), "line"
        numbered = [(n, row[0].strip()) for n, row in read_csv_rows(source, "seriesuids") if row[0].strip()]
        if numbered and numbered[0][1].lower() == "seriesuid":
            numbered = numbered[1:]
    else:
        where, label = "<seriesuids>", "item"
        numbered = [(n, str(uid).strip()) for n, uid in enumerate(source)]
        empty = [n for n, uid in numbered if not uid]
        if empty:
            raise InputError(where, f"{label} {empty[0]}: seriesuid is empty")
    seen: dict[str, int] = {}
    for n, uid in numbered:
        if uid in seen:
            raise InputError(where, f"{label} {n}: seriesuid {uid} already listed on {label} {seen[uid]}")
        seen[uid] = n
    if not seen:
        raise InputError(where, "lists no scan (expected one seriesuid per line)")
    return list(seen)


@dataclass
class PointTable:
    """A LUNA16 table as columns: ids, centres ``(N, 3)`` in LPS mm, one value (diameter or probability)."""

    source: str
    uids: list[str]
    xyz: np.ndarray
    value: np.ndarray


def read_point_table(source: TableSource, value_column: str, what: str) -> PointTable:
    """Read annotations (``value_column="diameter_mm"``) or results (``"probability"``) as columns.

    What the FROC evaluation reads: a CSV path, checked as :func:`read_table` checks it, or rows in memory
    (``"<what>: row i: <problem>"``). Negative diameters are kept (LUNA16 writes -1 for "unknown").

    Args:
        source: CSV path, or mappings with ``seriesuid, coordX, coordY, coordZ`` and ``value_column``.
        value_column: the one value column needed.
        what: what the table holds, for messages (``"annotations"``, ``"results"``).

    Examples:
        >>> table = read_point_table(
        ...     [{"seriesuid": "1.2", "coordX": 1, "coordY": 2, "coordZ": 3, "probability": 0.5}], "probability", "results"
        ... )
        >>> table.source, table.xyz.tolist(), table.value.tolist()
        ('<results>', [[1.0, 2.0, 3.0]], [0.5])
    """
    required = (*CANDIDATE_COLUMNS, value_column)
    numeric = (*COORD_COLUMNS, value_column)
    if isinstance(source, (str, os.PathLike)):
        table = read_table(source, required, numeric, what=what)
        xyz = np.stack([table.columns[c] for c in COORD_COLUMNS], axis=1).reshape(-1, 3)
        return PointTable(str(table.path), list(table.columns["seriesuid"]), xyz, table.columns[value_column])
    rows = check_records(source, required, numeric, source=f"<{what}>")
    values = np.array([[float(row[c]) for c in numeric] for row in rows], dtype=np.float64).reshape(-1, 4)
    uids = [str(row["seriesuid"]).strip() for row in rows]
    return PointTable(f"<{what}>", uids, values[:, :3].copy(), values[:, 3].copy())


# --------------------------------------------------------------------------------------------------
# writers
# --------------------------------------------------------------------------------------------------
def write_annotations_csv(
    rows: Iterable[Mapping[str, Any]], path: str | os.PathLike, extra_columns: Sequence[str] = ()
) -> Path:
    """Write a LUNA16 ``annotations.csv``: ``seriesuid,coordX,coordY,coordZ,diameter_mm`` (LPS mm), atomically.

    Args:
        rows: mappings with at least the LUNA16 columns (extra keys are ignored unless named in
            ``extra_columns``).
        path: the CSV file.
        extra_columns: more columns to write after the LUNA16 ones (e.g. ``("kind",)``); every row needs them.

    Raises:
        InputError: a row lacks a column or holds a non-finite coordinate or a negative diameter; no
            file is written.

    Examples:
        >>> row = {"seriesuid": "1.2.3", "coordX": -128.7, "coordY": -175.3, "coordZ": -298.4, "diameter_mm": 5.65}
        >>> write_annotations_csv([row], "/tmp/lungcad_example_annotations.csv").read_text().splitlines()[1]
        '1.2.3,-128.7,-175.3,-298.4,5.65'
    """
    columns = [*ANNOTATION_COLUMNS, *(c for c in extra_columns if c not in ANNOTATION_COLUMNS)]
    numeric = (*COORD_COLUMNS, "diameter_mm")
    return write_table(rows, path, columns, numeric=numeric, non_negative=["diameter_mm"])


def write_candidates_csv(rows: Sequence[Mapping[str, Any]], path: str | os.PathLike) -> Path:
    """Write a LUNA16 ``candidates.csv`` (``seriesuid,coordX,coordY,coordZ,class``, then ``kind``), atomically.

    ``kind`` is written when any row has it (empty where a row has none).

    Raises:
        InputError: a row lacks a column, holds a non-finite coordinate or a class that is not an integer.
    """
    columns = [*LABELLED_CANDIDATE_COLUMNS, *(k for k in ("kind",) if any(k in r for r in rows))]
    return write_table(rows, path, columns, LABELLED_CANDIDATE_COLUMNS, COORD_COLUMNS, integer=["class"])


def write_results_csv(rows: Iterable[Mapping[str, Any]], path: str | os.PathLike) -> Path:
    """Write candidates / detections in LUNA16 results form, atomically.

    Columns: ``seriesuid,coordX,coordY,coordZ,probability``, then ``diameter_mm`` when any row has it,
    then other keys in first-seen order. Floats are written at full precision, so probabilities keep
    their order and ties. The official evaluation script reads the file unchanged.

    Args:
        rows: dicts with at least the five LUNA16 keys (world mm, LPS).
        path: the CSV to write.

    Returns:
        ``path``.

    Raises:
        InputError: a row lacks a LUNA16 key or has a non-finite coordinate / probability (nothing is written).

    Examples:
        >>> write_results_csv(  # doctest: +SKIP
        ...     [{"seriesuid": "1.3.6.1.4.1.14519.5.2.1.6279.6001.100225287222365663678666836860",
        ...       "coordX": -128.7, "coordY": -175.3, "coordZ": -298.4, "probability": 0.93, "diameter_mm": 5.7}],
        ...     "results.csv")
    """
    rows = list(rows)
    extras = dict.fromkeys(key for row in rows for key in row if key not in RESULTS_COLUMNS)
    columns = [*RESULTS_COLUMNS, *(["diameter_mm"] if "diameter_mm" in extras else [])]
    columns += [key for key in extras if key != "diameter_mm"]
    return write_table(rows, path, columns, RESULTS_COLUMNS, (*COORD_COLUMNS, "probability"))


def write_seriesuids(uids: Iterable[str], path: str | os.PathLike) -> Path:
    """Write a LUNA16 ``seriesuids.csv`` (one id per line, no header), atomically.

    Raises:
        InputError: an id is empty or listed twice (as :func:`read_seriesuids` would refuse it).

    Examples:
        >>> write_seriesuids(["1.2.3", "1.2.4"], "/tmp/lungcad_example_seriesuids.csv").read_text()
        '1.2.3\\n1.2.4\\n'
    """
    path = Path(path)
    listed = [str(uid).strip() for uid in uids]
    seen: dict[str, int] = {}
    for i, uid in enumerate(listed):
        if not uid:
            raise InputError(path, f"row {i}: seriesuid is empty")
        if uid in seen:
            raise InputError(path, f"row {i}: seriesuid {uid} already listed on row {seen[uid]}")
        seen[uid] = i
    with atomic_file(path) as tmp:
        tmp.write_text("".join(f"{uid}\n" for uid in listed), encoding="utf-8")
    return path
