"""Every CSV lungcad reads or writes: LUNA16 annotations, candidates, results, excluded, seriesuids."""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path
from typing import Any

import numpy as np

from lungcad_transforms.errors import InputError
from lungcad_transforms.utils.atomic import atomic_file

__all__ = [
    "ANNOTATION_COLUMNS",
    "CANDIDATE_COLUMNS",
    "read_annotations",
    "read_candidates",
    "read_candidates_lenient",
    "LUNA16_ANNOTATION_COLUMNS",
    "write_annotations_csv",
    "write_candidates_csv",
    "RESULTS_COLUMNS",
    "Records",
    "TableSource",
    "read_seriesuids",
    "write_results_csv",
]


ANNOTATION_COLUMNS = ("seriesuid", "coordX", "coordY", "coordZ", "diameter_mm")


CANDIDATE_COLUMNS = ("seriesuid", "coordX", "coordY", "coordZ")


def _open_table(
    path: str | os.PathLike, required: Sequence[str]
) -> tuple[Path, int, list[str], list[tuple[int, list[str]]]]:
    """Read a CSV table: header line number, header (checked for ``required``), non-blank rows with line numbers."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file does not exist" if not path.exists() else "is not a file")
    try:
        # utf-8-sig: spreadsheet exports put a byte-order mark before "seriesuid"
        with open(path, newline="", encoding="utf-8-sig") as handle:
            rows = list(_numbered_rows(handle))
    except UnicodeDecodeError as err:
        raise InputError(path, f"is not a text CSV file ({err.reason})") from err
    except csv.Error as err:
        raise InputError(path, f"is not a valid CSV file: {err}") from err
    if not rows:
        raise InputError(path, "is empty: expected a header line " + ",".join(required))
    header_line, header = rows[0]
    header = [column.strip() for column in header]
    missing = [column for column in required if column not in header]
    if missing:
        raise InputError(
            path,
            f"line {header_line}: header {','.join(header)!r} lacks column(s) {', '.join(missing)} "
            f"(expected {','.join(required)})",
        )
    duplicated = sorted({column for column in header if header.count(column) > 1})
    if duplicated:
        raise InputError(path, f"line {header_line}: header repeats column(s) {', '.join(duplicated)}")
    return path, header_line, header, rows[1:]


def _numbered_rows(handle: Any):
    reader = csv.reader(handle)
    for row in reader:
        # csv.reader counts physical lines, so a quoted field spanning lines still reports where its row ends
        if not row or all(not field.strip() for field in row):
            continue
        yield reader.line_num, row


def _float_field(path: Path, line: int, column: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InputError(path, f"line {line}: {column} is {text!r}, not a number") from None
    if not math.isfinite(value):
        raise InputError(path, f"line {line}: {column} is {text!r}, not a finite number")
    return value


def _typed_rows(
    path: Path,
    header: list[str],
    rows: list[tuple[int, list[str]]],
    float_columns: set[str],
    int_columns: set[str],
) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    for line, row in rows:
        if len(row) != len(header):
            raise InputError(
                path, f"line {line}: expected {len(header)} fields ({','.join(header)}), found {len(row)}"
            )
        record: dict[str, Any] = {}
        for column, raw in zip(header, row, strict=True):
            text = raw.strip()
            if column == "seriesuid":
                if not text:
                    raise InputError(path, f"line {line}: seriesuid is empty")
                record[column] = text
            elif column in float_columns:
                record[column] = _float_field(path, line, column, text)
            elif column in int_columns:
                number = _float_field(path, line, column, text)
                if number != int(number):
                    raise InputError(path, f"line {line}: {column} is {text!r}, not an integer")
                record[column] = int(number)
            else:
                # columns this project does not interpret travel along as text
                record[column] = text
        if record.get("diameter_mm", 0.0) < 0:
            raise InputError(path, f"line {line}: diameter_mm is negative ({record['diameter_mm']})")
        records.append(record)
    return records


def read_annotations(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Read a LUNA16 ``annotations.csv``: ``seriesuid,coordX,coordY,coordZ,diameter_mm``.

    Args:
        path: the CSV file. Further columns after the five are allowed and kept as text.

    Returns:
        one dict per nodule, in file order: ``seriesuid`` (str), ``coordX``, ``coordY``, ``coordZ`` (float,
        LPS mm), ``diameter_mm`` (float).

    Raises:
        InputError: the file is missing or empty, the header lacks a column, or a row has the wrong number
            of fields, an empty seriesuid, or a value that is not a finite number (names the line).

    Examples:
        >>> rows = read_annotations("annotations.csv")  # doctest: +SKIP
        >>> rows[0]  # doctest: +SKIP
        {'seriesuid': '1.3.6.1.4.1.14519.5.2.1.6279.6001.1002...', 'coordX': -128.699, 'coordY': -175.319,
         'coordZ': -298.387, 'diameter_mm': 5.651}
    """
    path, _, header, rows = _open_table(path, ANNOTATION_COLUMNS)
    return _typed_rows(path, header, rows, {"coordX", "coordY", "coordZ", "diameter_mm"}, set())


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
            nor ``probability``), or a row is malformed (names the line).

    Examples:
        >>> rows = read_candidates("candidates_V2.csv")  # doctest: +SKIP
        >>> rows[0]["class"], rows[0]["coordZ"]  # doctest: +SKIP
        (0, -377.42)
    """
    path, header_line, header, rows = _open_table(path, CANDIDATE_COLUMNS)
    if "class" not in header and "probability" not in header:
        raise InputError(
            path,
            f"line {header_line}: header {','.join(header)!r} has neither a 'class' nor a 'probability' column",
        )
    floats = {"coordX", "coordY", "coordZ", "probability", "diameter_mm"}
    return _typed_rows(path, header, rows, floats, {"class"})


# --------------------------------------------------------------------------------------------------
# inputs: candidate tables, scans, extra positives
# --------------------------------------------------------------------------------------------------
def read_candidates_lenient(path: str | os.PathLike) -> tuple[list[dict[str, Any]], list[str]]:
    """Read a candidates / results CSV, skipping malformed rows instead of failing on the first.

    For inference on a user's table (the segmentation bundle's ``candidates.csv`` with
    ``probability,diameter_mm`` columns, or a LUNA16 ``candidates.csv``): a row with the wrong number
    of fields, an empty ``seriesuid`` or a coordinate that is not a finite number is reported and
    skipped, the others are kept. Training uses the strict ``coords.read_candidates``.

    Args:
        path: the CSV; needs the columns ``seriesuid,coordX,coordY,coordZ``.

    Returns:
        ``(rows, problems)``: the good rows as ``coords.read_candidates`` returns them, each with its
        ``line`` number added; and one message per skipped row.

    Raises:
        InputError: the file is missing, empty, not text, or its header lacks a required column.

    Examples:
        >>> rows, problems = read_candidates_lenient("candidates.csv")  # doctest: +SKIP
        >>> problems  # doctest: +SKIP
        ['candidates.csv: line 7: coordY is 'abc', not a number (row skipped)']
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file does not exist" if not path.exists() else "is not a file")
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            lines = [(reader.line_num, row) for row in reader if row and any(f.strip() for f in row)]
    except UnicodeDecodeError as err:
        raise InputError(path, f"is not a text CSV file ({err.reason})") from err
    except csv.Error as err:
        raise InputError(path, f"is not a valid CSV file: {err}") from err
    if not lines:
        raise InputError(path, "is empty: expected a header line seriesuid,coordX,coordY,coordZ")
    header = [h.strip() for h in lines[0][1]]
    missing = [c for c in ("seriesuid", "coordX", "coordY", "coordZ") if c not in header]
    if missing:
        raise InputError(path, f"header {','.join(header)!r} lacks column(s) {', '.join(missing)}")
    numeric = {"coordX", "coordY", "coordZ", "probability", "diameter_mm"}
    rows: list[dict[str, Any]] = []
    problems: list[str] = []
    for line, fields in lines[1:]:
        problem = None
        record: dict[str, Any] = {"line": line}
        if len(fields) != len(header):
            problem = f"expected {len(header)} fields, found {len(fields)}"
        else:
            for column, raw in zip(header, fields, strict=True):
                text = raw.strip()
                if column == "seriesuid":
                    if not text:
                        problem = "seriesuid is empty"
                        break
                    record[column] = text
                elif column in numeric or column == "class":
                    try:
                        value = float(text)
                    except ValueError:
                        value = math.nan
                    if not math.isfinite(value):
                        problem = f"{column} is {text!r}, not a finite number"
                        break
                    record[column] = int(value) if column == "class" else value
                else:
                    record[column] = text
        if problem is not None:
            problems.append(f"{path}: line {line}: {problem} (row skipped)")
        else:
            rows.append(record)
    return rows, problems


LUNA16_ANNOTATION_COLUMNS: tuple[str, ...] = ("seriesuid", "coordX", "coordY", "coordZ", "diameter_mm")


def _format_number(value: float) -> str:
    # shortest text that reads back to the same float
    return repr(float(value))


def write_annotations_csv(
    rows: Iterable[Mapping[str, Any]], path: str | os.PathLike, extra_columns: Sequence[str] = ()
) -> Path:
    """Write a LUNA16 ``annotations.csv``: ``seriesuid,coordX,coordY,coordZ,diameter_mm`` (LPS mm).

    Args:
        rows: mappings with at least the LUNA16 columns (extra keys are ignored unless named in
            ``extra_columns``).
        path: the CSV file.
        extra_columns: more columns to write after the LUNA16 ones (e.g. ``("kind",)``).

    Raises:
        InputError: a row lacks a column or holds a non-finite coordinate; no file is written.

    Examples:
        >>> row = {"seriesuid": "1.2.3", "coordX": -128.7, "coordY": -175.3, "coordZ": -298.4, "diameter_mm": 5.65}
        >>> write_annotations_csv([row], "/tmp/lungcad_example_annotations.csv").read_text().splitlines()[1]
        '1.2.3,-128.7,-175.3,-298.4,5.65'
    """
    columns = list(LUNA16_ANNOTATION_COLUMNS) + [
        c for c in extra_columns if c not in LUNA16_ANNOTATION_COLUMNS
    ]
    table = []
    for n, row in enumerate(rows, start=1):
        missing = [c for c in columns if c not in row]
        if missing:
            raise InputError(path, f"row {n} lacks {', '.join(missing)}")
        out = [str(row["seriesuid"])]
        for c in ("coordX", "coordY", "coordZ", "diameter_mm"):
            try:
                v = float(row[c])
            except (TypeError, ValueError) as exc:
                raise InputError(path, f"row {n}: {c} is not a number ({row[c]!r})") from exc
            if not math.isfinite(v):
                raise InputError(path, f"row {n}: {c} is not finite ({v})")
            out.append(_format_number(v))
        out += [str(row[c]) for c in columns[len(LUNA16_ANNOTATION_COLUMNS) :]]
        table.append(out)
    with atomic_file(path) as tmp:
        with open(tmp, "w", newline="") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(columns)
            writer.writerows(table)
    return Path(path)


def write_candidates_csv(rows: Sequence[dict[str, Any]], path: str | os.PathLike) -> Path:
    """Write a LUNA16 ``candidates.csv`` (``seriesuid,coordX,coordY,coordZ,class``, then ``kind``), atomically."""
    path = Path(path)
    columns = ["seriesuid", "coordX", "coordY", "coordZ", "class"]
    extra = [k for k in ("kind",) if any(k in r for r in rows)]
    with atomic_file(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            fh.write(",".join(columns + extra) + "\n")
            for r in rows:
                values = [str(r["seriesuid"]), repr(float(r["coordX"])), repr(float(r["coordY"])),
                          repr(float(r["coordZ"])), str(int(r["class"]))] + [str(r.get(k, "")) for k in extra]  # fmt: skip
                fh.write(",".join(values) + "\n")
    return path


RESULTS_COLUMNS: tuple[str, ...] = ("seriesuid", "coordX", "coordY", "coordZ", "probability")


_COORDS = ("coordX", "coordY", "coordZ")


Records = Iterable[Mapping[str, Any]]


TableSource = str | os.PathLike | Records


# --------------------------------------------------------------------------------------------------
# reading inputs
# --------------------------------------------------------------------------------------------------
@dataclass
class _Table:
    """Columns of a LUNA16 CSV: ids, centres (N, 3) in mm, and one value column (diameter or probability)."""

    source: str
    uids: list[str]
    xyz: np.ndarray
    value: np.ndarray


def _to_float_column(
    values: Sequence[str], column: str, table_lines: np.ndarray | None, path: Path
) -> np.ndarray:
    try:
        arr = np.array(values, dtype=np.float64)
    except ValueError:
        arr = None
    if arr is None:
        # the fast conversion failed somewhere: find the first offending row to name its line
        for row, text in enumerate(values):
            try:
                float(text)
            except ValueError:
                line = int(table_lines[row]) if table_lines is not None else row + 2
                raise InputError(path, f"line {line}: {column} is not a number: {text!r}") from None
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        row = int(bad[0])
        line = int(table_lines[row]) if table_lines is not None else row + 2
        raise InputError(path, f"line {line}: {column} is not finite: {values[row]!r}")
    return arr


def _read_csv_table(path: str | os.PathLike, value_column: str, what: str) -> _Table:
    # csv + numpy rather than a row-by-row dict reader: 750k LUNA16 candidates parse in about two seconds,
    # and every error can name its line
    path = Path(path)
    if not path.is_file():
        raise InputError(path, f"{what} file not found")
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.reader(fh))
    except (UnicodeDecodeError, csv.Error) as err:
        raise InputError(path, f"not a readable CSV file ({err})") from None
    if not rows or not any(name.strip() for name in rows[0]):
        raise InputError(path, f"empty {what} file: the first line must be a header naming the columns")
    header = [name.strip() for name in rows[0]]
    wanted = ("seriesuid", *_COORDS, value_column)
    missing = [name for name in wanted if name not in header]
    if missing:
        raise InputError(
            path, f"line 1: missing column(s) {', '.join(missing)} (header is {','.join(header)!r})"
        )
    col = {name: header.index(name) for name in wanted}
    n_fields = max(col.values()) + 1
    data = rows[1:]
    lines = None
    if any(not row for row in data):  # csv yields [] for a blank line: skip those, keep line numbers
        kept = [i for i, row in enumerate(data) if row]
        data = [data[i] for i in kept]
        lines = np.asarray(kept, dtype=np.int64) + 2
    lengths = np.fromiter(map(len, data), dtype=np.int64, count=len(data))
    short = np.flatnonzero(lengths < n_fields)
    if short.size:
        i = int(short[0])
        line = int(lines[i]) if lines is not None else i + 2
        raise InputError(path, f"line {line}: {lengths[i]} field(s), the header needs at least {n_fields}")

    def column(name: str) -> list[str]:
        return list(map(itemgetter(col[name]), data))

    uids = [uid.strip() for uid in column("seriesuid")]
    for i, uid in enumerate(uids):
        if not uid:
            line = int(lines[i]) if lines is not None else i + 2
            raise InputError(path, f"line {line}: empty seriesuid")
    xyz = np.empty((len(data), 3), dtype=np.float64)
    for axis, name in enumerate(_COORDS):
        xyz[:, axis] = _to_float_column(column(name), name, lines, path)
    value = _to_float_column(column(value_column), value_column, lines, path)
    return _Table(str(path), uids, xyz, value)


def _records_table(records: Records, value_column: str, what: str) -> _Table:
    source = f"<{what}>"
    uids: list[str] = []
    rows: list[tuple[float, float, float, float]] = []
    for i, rec in enumerate(records):
        try:
            uid = str(rec["seriesuid"]).strip()
            vals = (
                float(rec["coordX"]),
                float(rec["coordY"]),
                float(rec["coordZ"]),
                float(rec[value_column]),
            )
        except KeyError as err:
            raise InputError(source, f"row {i}: missing key {err.args[0]!r}") from None
        except (TypeError, ValueError) as err:
            raise InputError(source, f"row {i}: not a number ({err})") from None
        if not uid:
            raise InputError(source, f"row {i}: empty seriesuid")
        if not all(math.isfinite(v) for v in vals):
            raise InputError(source, f"row {i}: coordinates and {value_column} must be finite, got {vals}")
        uids.append(uid)
        rows.append(vals)
    arr = np.asarray(rows, dtype=np.float64).reshape(-1, 4)
    return _Table(source, uids, arr[:, :3].copy(), arr[:, 3].copy())


def _load_table(source: TableSource | _Table, value_column: str, what: str) -> _Table:
    if isinstance(source, _Table):
        return source
    if isinstance(source, (str, os.PathLike)):
        return _read_csv_table(source, value_column, what)
    return _records_table(source, value_column, what)


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
        path = Path(source)
        if not path.is_file():
            raise InputError(path, "seriesuids file not found")
        try:
            with open(path, newline="", encoding="utf-8-sig") as fh:
                rows = list(csv.reader(fh))
        except (UnicodeDecodeError, csv.Error) as err:
            raise InputError(path, f"not a readable CSV file ({err})") from None
        where = str(path)
        numbered = [(n, row[0].strip()) for n, row in enumerate(rows, start=1) if row and row[0].strip()]
        if numbered and numbered[0][1].lower() == "seriesuid":
            numbered = numbered[1:]
        label = "line"
    else:
        where = "<seriesuids>"
        numbered = [(n, str(uid).strip()) for n, uid in enumerate(source)]
        label = "item"
        empty = [n for n, uid in numbered if not uid]
        if empty:
            raise InputError(where, f"{label} {empty[0]}: empty seriesuid")
    seen: dict[str, int] = {}
    for n, uid in numbered:
        if uid in seen:
            raise InputError(where, f"{label} {n}: seriesuid {uid} already listed on {label} {seen[uid]}")
        seen[uid] = n
    if not seen:
        raise InputError(where, "lists no scan (expected one seriesuid per line)")
    return list(seen)


# --------------------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------------------
def _format_value(value: Any) -> str:
    if isinstance(value, (float, np.floating)):
        return repr(float(value))  # shortest text that reads back to the same double
    if isinstance(value, (np.integer,)):
        return str(int(value))
    return "" if value is None else str(value)


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
    path = Path(path)
    rows = list(rows)
    columns = list(RESULTS_COLUMNS)
    extras: dict[str, None] = {}
    for i, row in enumerate(rows):
        for key in RESULTS_COLUMNS:
            if key not in row:
                raise InputError(
                    path, f"row {i}: missing {key!r}; LUNA16 results need {','.join(RESULTS_COLUMNS)}"
                )
        for key in ("coordX", "coordY", "coordZ", "probability"):
            try:
                value = float(row[key])
            except (TypeError, ValueError):
                raise InputError(path, f"row {i}: {key} is not a number: {row[key]!r}") from None
            if not math.isfinite(value):
                raise InputError(path, f"row {i}: {key} is not finite: {row[key]!r}")
        if not str(row["seriesuid"]).strip():
            raise InputError(path, f"row {i}: empty seriesuid")
        for key in row:
            if key not in RESULTS_COLUMNS:
                extras.setdefault(key, None)
    if "diameter_mm" in extras:
        columns.append("diameter_mm")
    columns += [key for key in extras if key != "diameter_mm"]
    with atomic_file(path) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(columns)
            for row in rows:
                writer.writerow([_format_value(row.get(key)) for key in columns])
    return path
