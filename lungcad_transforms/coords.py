"""World <-> voxel conversion in the LUNA16 convention, and the LUNA16 annotation / candidate tables.

LUNA16 (and every CSV or JSON this project writes) gives positions in ITK physical space: LPS,
millimetres. Images in this project are loaded with MONAI ``LoadImage(reader="ITKReader")`` and
canonicalised with ``Orientation(axcodes="RAS")``, so their ``MetaTensor.affine`` maps a voxel index to
RAS millimetres. This module is the only place that crosses between the two: x and y change sign
(LPS -> RAS), then the inverse affine gives the (fractional) voxel index.

Voxel index ``i`` is the centre of a voxel that covers ``[i - 0.5, i + 0.5)`` along each axis; a point is
inside a volume of ``n`` voxels along an axis when ``-0.5 <= i < n - 0.5``. Points outside are reported,
never clipped onto the border slice: a nodule beyond the last slice of a partial scan is not in it.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import ArrayLike

from lungcad_transforms.errors import InputError

__all__ = [
    "LPS_TO_RAS",
    "world_to_voxel",
    "voxel_to_world",
    "inside_volume",
    "read_annotations",
    "read_candidates",
]

# LPS and RAS differ by the sign of the first two axes; the same diagonal maps either way.
LPS_TO_RAS = np.array([-1.0, -1.0, 1.0])

ANNOTATION_COLUMNS = ("seriesuid", "coordX", "coordY", "coordZ", "diameter_mm")
CANDIDATE_COLUMNS = ("seriesuid", "coordX", "coordY", "coordZ")


def _as_points(points: ArrayLike | torch.Tensor, name: str) -> np.ndarray:
    if isinstance(points, torch.Tensor):
        points = points.detach().cpu().numpy()
    arr = np.asarray(points, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise ValueError(f"{name} must have shape (3,) or (N, 3), got {np.shape(points)}")
    return arr


def _as_affine(affine: ArrayLike | torch.Tensor) -> np.ndarray:
    if isinstance(affine, torch.Tensor):
        affine = affine.detach().cpu().numpy()
    arr = np.asarray(affine, dtype=np.float64)
    if arr.shape != (4, 4):
        raise ValueError(f"affine must be a 4x4 matrix (3-D image), got shape {arr.shape}")
    return arr


def world_to_voxel(points_lps: ArrayLike | torch.Tensor, affine_ras: ArrayLike | torch.Tensor) -> np.ndarray:
    """Convert LUNA16 world positions (ITK physical space, LPS, mm) to voxel indices.

    Args:
        points_lps: one point ``(3,)`` or ``(N, 3)`` points, ``(coordX, coordY, coordZ)`` as in LUNA16.
        affine_ras: the 4x4 voxel -> RAS affine of the loaded image (``MetaTensor.affine``).

    Returns:
        float64 array ``(N, 3)`` of fractional voxel indices along the image's spatial axes (a single
        point gives ``(1, 3)``). Not rounded and not clipped: check with :func:`inside_volume`, and round
        with ``np.floor(index + 0.5)`` (the voxel whose extent holds the point).

    Examples:
        A 0.82 mm x 0.82 mm x 2.5 mm CT slab whose voxel (0, 0, 0) sits at RAS (-190.4, -209.2, -204):

        >>> affine = np.array([[0.82, 0, 0, -190.4], [0, 0.82, 0, -209.2], [0, 0, 2.5, -204.0], [0, 0, 0, 1]])
        >>> world_to_voxel([72.29, 76.90, -190.46], affine).round(1)  # a LUNA16 nodule row
        array([[144. , 161.3,   5.4]])
    """
    points = _as_points(points_lps, "points_lps")
    affine = _as_affine(affine_ras)
    points_ras = points * LPS_TO_RAS
    homogeneous = np.concatenate([points_ras, np.ones((len(points_ras), 1))], axis=1)
    # solve instead of inv(): better conditioned for strongly anisotropic spacing
    return np.linalg.solve(affine, homogeneous.T).T[:, :3]


def voxel_to_world(indices: ArrayLike | torch.Tensor, affine_ras: ArrayLike | torch.Tensor) -> np.ndarray:
    """Convert voxel indices of a loaded (RAS-affine) image to LUNA16 world positions (LPS, mm).

    Args:
        indices: one index ``(3,)`` or ``(N, 3)`` indices (integer or fractional) along the spatial axes.
        affine_ras: the 4x4 voxel -> RAS affine of the loaded image (``MetaTensor.affine``).

    Returns:
        float64 array ``(N, 3)`` of ``(coordX, coordY, coordZ)`` in ITK physical space (LPS, mm), ready for
        a LUNA16-style CSV.

    Examples:
        >>> affine = np.array([[0.82, 0, 0, -190.4], [0, 0.82, 0, -209.2], [0, 0, 2.5, -204.0], [0, 0, 0, 1]])
        >>> voxel_to_world([144, 161, 5], affine).round(2)
        array([[  72.32,   77.18, -191.5 ]])
    """
    voxels = _as_points(indices, "indices")
    affine = _as_affine(affine_ras)
    points_ras = voxels @ affine[:3, :3].T + affine[:3, 3]
    return points_ras * LPS_TO_RAS


def inside_volume(indices: ArrayLike | torch.Tensor, spatial_shape: Sequence[int]) -> np.ndarray:
    """Whether each (fractional) voxel index lies inside a volume of the given spatial shape.

    A voxel ``i`` covers ``[i - 0.5, i + 0.5)``, so the volume spans ``[-0.5, n - 0.5)`` along an axis of
    ``n`` voxels. Non-finite indices are outside.

    Args:
        indices: ``(3,)`` or ``(N, 3)`` voxel indices, e.g. from :func:`world_to_voxel`.
        spatial_shape: the image's spatial shape ``(X, Y, Z)`` (``MetaTensor.shape[1:]``).

    Returns:
        bool array ``(N,)``.

    Examples:
        An 11-slice CT slab: a nodule centre at slice 5.4 is inside, one at slice 12.7 is not.

        >>> inside_volume([[144.0, 161.3, 5.4], [84.5, 313.7, 12.7]], (512, 512, 11))
        array([ True, False])
    """
    voxels = _as_points(indices, "indices")
    shape = np.asarray(tuple(spatial_shape), dtype=np.float64)
    if shape.shape != (3,):
        raise ValueError(f"spatial_shape must have 3 entries (X, Y, Z), got {tuple(spatial_shape)}")
    with np.errstate(invalid="ignore"):
        inside = (voxels >= -0.5) & (voxels < shape - 0.5)
    return inside.all(axis=1)


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
