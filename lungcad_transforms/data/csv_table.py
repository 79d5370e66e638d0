"""The one CSV table reader and writer: typed columns, one message form for bad rows, atomic writes.

Every table lungcad reads goes through :func:`read_table` and every table it writes through
:func:`write_table`, so a malformed row reads the same wherever it is found: ``"<file>: line N: <problem>"``,
raised as :class:`~lungcad_transforms.errors.InputError` or, where the caller skips bad rows, collected.
The LUNA16 tables themselves (columns, readers, writers) are in :mod:`lungcad_transforms.data.tables`.
"""

from __future__ import annotations

import csv
import math
import operator
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path
from typing import Any, Literal

import numpy as np

from lungcad_transforms.errors import InputError
from lungcad_transforms.utils.atomic import atomic_file

__all__ = ["Table", "read_csv_rows", "read_table", "check_records", "format_value", "write_table"]


@dataclass
class Table:
    """The good rows of a CSV table, as typed columns in file order (see :func:`read_table`).

    Attributes:
        path: the file read.
        header: the column names, as in the file.
        lines: the line number of each row kept (``int64``).
        columns: name -> values of the rows kept: ``float64`` array for numeric columns, ``int64`` array
            for integer columns, list of (stripped) strings for the others.
        problems: one ``"<file>: line N: <problem> (row skipped)"`` per row skipped.
    """

    path: Path
    header: list[str]
    lines: np.ndarray
    columns: dict[str, np.ndarray | list[str]]
    problems: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.lines)

    def rows(self, with_line: bool = False) -> list[dict[str, Any]]:
        """One dict per row (Python ``float`` / ``int`` / ``str`` values); ``with_line`` adds its ``line``."""
        names = list(self.header)
        values = [v.tolist() if isinstance(v, np.ndarray) else v for v in (self.columns[n] for n in names)]
        if with_line:
            names.append("line")
            values.append(self.lines.tolist())
        return [dict(zip(names, row, strict=True)) for row in zip(*values, strict=True)]


def read_csv_rows(path: str | os.PathLike, what: str = "CSV") -> list[tuple[int, list[str]]]:
    """The non-blank rows of a CSV file with their line numbers (no header handling).

    Args:
        path: the file; a UTF-8 byte-order mark (spreadsheet exports) is ignored.
        what: what the file holds, for messages (``"annotations"`` -> ``"annotations file does not exist"``).

    Raises:
        InputError: the file is missing, not text or not valid CSV.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, f"{what} file does not exist" if not path.exists() else "is not a file")
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            # line_num counts physical lines, so a quoted field spanning lines still names where its row ends
            return [(reader.line_num, row) for row in reader if any(map(str.strip, row))]
    except UnicodeDecodeError as err:
        raise InputError(path, f"is not a text CSV file ({err.reason})") from err
    except csv.Error as err:
        raise InputError(path, f"is not a valid CSV file: {err}") from err


def _show(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def _value_problem(column: str, value: Any, integer: bool, non_negative: bool) -> str | None:
    """What is wrong with one number (text from a file or a value in memory), or None."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return f"{column} is {_show(value)}, not a number"
    if not math.isfinite(number):
        return f"{column} is {_show(value)}, not a finite number"
    if integer and number != int(number):
        return f"{column} is {_show(value)}, not an integer"
    if non_negative and number < 0:
        return f"{column} is negative ({_show(value)})"
    return None


def _row_problem(
    header: Sequence[str], fields: Sequence[str], numeric: set[str], integer: set[str], non_negative: set[str]
) -> str:
    """The first problem of a malformed row, in column order (the message of :func:`read_table`)."""
    if len(fields) != len(header):
        return f"expected {len(header)} fields ({','.join(header)}), found {len(fields)}"
    for column, raw in zip(header, fields, strict=True):
        text = raw.strip()
        if column == "seriesuid" and not text:
            return "seriesuid is empty"
        if column in numeric or column in integer:
            problem = _value_problem(column, text, column in integer, column in non_negative)
            if problem:
                return problem
    return "malformed row"  # not reached: the vectorised checks flag only rows with a problem above


def _parse_numbers(text: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """``float()`` of every text (NaN where it fails) and the mask of failures."""
    try:
        # float() rather than numpy's own parsing: the same rule as the per-row messages
        return np.fromiter(map(float, text), np.float64, len(text)), np.zeros(len(text), bool)
    except ValueError:
        values = np.empty(len(text), np.float64)
        failed = np.zeros(len(text), bool)
        for i, t in enumerate(text):
            try:
                values[i] = float(t)
            except ValueError:
                values[i], failed[i] = math.nan, True
        return values, failed


def read_table(
    path: str | os.PathLike,
    required: Sequence[str],
    numeric: Iterable[str] = (),
    integer: Iterable[str] = (),
    non_negative: Iterable[str] = (),
    one_of: Sequence[str] = (),
    on_bad_row: Literal["raise", "skip"] = "raise",
    what: str = "CSV",
) -> Table:
    """Read a CSV table with a header line, checking every row; vectorised (750k rows in a few seconds).

    A row is malformed when its field count differs from the header's, its ``seriesuid`` is empty, or a
    ``numeric`` / ``integer`` value is not a finite number (or not whole, or negative where
    ``non_negative``). Blank lines are ignored; other columns are kept as text.

    Args:
        path: the CSV file.
        required: columns the header must have.
        numeric: columns read as ``float64`` (when present).
        integer: columns read as ``int64`` (when present).
        non_negative: numeric columns that must not be negative.
        one_of: the header must have at least one of these (e.g. ``class`` or ``probability``).
        on_bad_row: ``"raise"``: the first malformed row raises; ``"skip"``: malformed rows are left out
            and reported in :attr:`Table.problems`.
        what: what the file holds, for messages.

    Returns:
        a :class:`Table`.

    Raises:
        InputError: the file is missing, unreadable or empty, its header lacks a column or repeats one, or
            (``on_bad_row="raise"``) a row is malformed: ``"<file>: line N: <problem>"``.

    Examples:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "t.csv"
        >>> _ = path.write_text("seriesuid,coordX\\n1.2.3,4.5\\n1.2.3,abc\\n")
        >>> table = read_table(path, ["seriesuid", "coordX"], numeric=["coordX"], on_bad_row="skip")
        >>> table.rows(), table.problems[0].endswith("line 3: coordX is 'abc', not a number (row skipped)")
        ([{'seriesuid': '1.2.3', 'coordX': 4.5}], True)
    """
    if on_bad_row not in ("raise", "skip"):
        raise ValueError(f"on_bad_row must be 'raise' or 'skip', got {on_bad_row!r}")
    path = Path(path)
    rows = read_csv_rows(path, what)
    if not rows:
        raise InputError(path, f"empty {what} file: expected a header line {','.join(required)}")
    header_line, header = rows[0][0], [column.strip() for column in rows[0][1]]
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
    if one_of and not any(column in header for column in one_of):
        either = " nor ".join(f"a {column!r}" for column in one_of)
        raise InputError(path, f"line {header_line}: header {','.join(header)!r} has neither {either} column")
    numeric, integer, non_negative = set(numeric), set(integer), set(non_negative)

    data = rows[1:]
    n, width = len(data), len(header)
    lines = np.fromiter(map(itemgetter(0), data), np.int64, n)
    records = list(map(itemgetter(1), data))
    bad = np.fromiter(map(len, records), np.int64, n) != width
    if bad.any():  # short or long rows are bad already: pad them so that every column can be taken
        records = [fields if len(fields) == width else [""] * width for fields in records]
    columns: dict[str, np.ndarray | list[str]] = {}
    for j, column in enumerate(header):
        raw = list(map(itemgetter(j), records))
        if column in numeric or column in integer:
            values, failed = _parse_numbers(raw)  # float() ignores the blanks around a number
            with np.errstate(invalid="ignore"):
                bad |= failed | ~np.isfinite(values)
                if column in integer:
                    bad |= values != np.trunc(values)
                if column in non_negative:
                    bad |= values < 0
            columns[column] = values
        else:
            text = list(map(str.strip, raw))
            if column == "seriesuid":
                bad |= np.fromiter(map(operator.not_, text), bool, n)
            columns[column] = text

    problems: list[str] = []
    if bad.any():
        flagged = np.flatnonzero(bad)
        if on_bad_row == "raise":
            i = int(flagged[0])
            raise InputError(
                path, f"line {lines[i]}: {_row_problem(header, data[i][1], numeric, integer, non_negative)}"
            )
        for i in flagged:
            problem = _row_problem(header, data[i][1], numeric, integer, non_negative)
            problems.append(f"{InputError(path, f'line {lines[i]}: {problem}')} (row skipped)")
        kept = np.flatnonzero(~bad)
        lines = lines[kept]
        columns = {
            k: v[kept] if isinstance(v, np.ndarray) else [v[i] for i in kept] for k, v in columns.items()
        }
    for column in integer & columns.keys():
        columns[column] = columns[column].astype(np.int64)
    return Table(path, header, lines, columns, problems)


def check_records(
    records: Iterable[Mapping[str, Any]],
    required: Sequence[str],
    numeric: Iterable[str] = (),
    integer: Iterable[str] = (),
    non_negative: Iterable[str] = (),
    source: str | os.PathLike = "<rows>",
) -> list[Mapping[str, Any]]:
    """Check rows held in memory by the same rules as :func:`read_table`; ``row i`` counts from 0.

    Args:
        records: mappings, one per row.
        required: keys every row must have.
        numeric, integer, non_negative: as for :func:`read_table` (checked where the key is present).
        source: named in the error (the file about to be written, or ``"<annotations>"``).

    Returns:
        the rows, as a list.

    Raises:
        InputError: ``"<source>: row i: <problem>"`` for the first bad row.

    Examples:
        >>> check_records([{"seriesuid": "1.2", "coordX": "abc"}], ["seriesuid", "coordX"], numeric=["coordX"])
        Traceback (most recent call last):
        ...
        lungcad_transforms.errors.InputError: <rows>: row 0: coordX is 'abc', not a number
    """
    rows = list(records)
    numeric, integer, non_negative = set(numeric), set(integer), set(non_negative)
    for i, row in enumerate(rows):
        for key in required:
            if key not in row:
                raise InputError(source, f"row {i}: missing key {key!r}")
        if "seriesuid" in row and not str(row["seriesuid"]).strip():
            raise InputError(source, f"row {i}: seriesuid is empty")
        for key in row:
            if key in numeric or key in integer:
                problem = _value_problem(key, row[key], key in integer, key in non_negative)
                if problem:
                    raise InputError(source, f"row {i}: {problem}")
    return rows


def format_value(value: Any) -> str:
    """A value as CSV text: floats at full precision (shortest text reading back the same double).

    Examples:
        >>> format_value(0.1 + 0.2), format_value(np.float32(1.5)), format_value(np.int64(3)), format_value(None)
        ('0.30000000000000004', '1.5', '3', '')
    """
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    if isinstance(value, np.integer):
        return str(int(value))
    return "" if value is None else str(value)


def write_table(
    rows: Iterable[Mapping[str, Any]],
    path: str | os.PathLike,
    columns: Sequence[str],
    required: Sequence[str] | None = None,
    numeric: Iterable[str] = (),
    integer: Iterable[str] = (),
    non_negative: Iterable[str] = (),
) -> Path:
    """Write rows as a CSV table, atomically, after checking them all (a bad row writes nothing).

    Args:
        rows: mappings; keys not in ``columns`` are ignored, a missing optional column is left empty.
        path: the CSV file (its folder is created).
        columns: the header, in order.
        required: keys every row must have (default: all of ``columns``).
        numeric: columns written as floats at full precision (``2`` -> ``2.0``).
        integer: columns written as integers.
        non_negative: numeric columns that must not be negative.

    Returns:
        ``path``.

    Raises:
        InputError: ``"<path>: row i: <problem>"`` (see :func:`check_records`).

    Examples:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "t.csv"
        >>> write_table([{"seriesuid": "1.2", "coordX": 2}], path, ["seriesuid", "coordX"], numeric=["coordX"]).read_text()
        'seriesuid,coordX\\n1.2,2.0\\n'
    """
    path = Path(path)
    numeric, integer = set(numeric), set(integer)
    rows = check_records(
        rows, columns if required is None else required, numeric, integer, non_negative, path
    )

    def text(row: Mapping[str, Any], column: str) -> str:
        value = row.get(column)
        if value is None:
            return ""
        if column in numeric:
            return repr(float(value))
        if column in integer:
            return str(int(float(value)))
        return format_value(value)

    with atomic_file(path) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(columns)
            writer.writerows([text(row, column) for column in columns] for row in rows)
    return path
