"""Slice geometry of an LIDC DICOM series, for mapping reader contours onto voxels."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lungcad_transforms.apps.lidc.xml import LidcContour
from lungcad_transforms.data.dicom import dicom_series_slices
from lungcad_transforms.errors import InputError

__all__ = ["SliceGeometry", "read_slice_geometry"]


@dataclass
class SliceGeometry:
    """Where the pixels of each slice of a DICOM series lie in the world (from the headers only).

    Attributes:
        series_uid: SeriesInstanceUID.
        sop_uids: SOPInstanceUID per slice.
        positions_lps: ``(S, 3)`` ImagePositionPatient per slice (LPS mm).
        row_direction: unit vector along which the column index grows (ImageOrientationPatient[:3]).
        column_direction: unit vector along which the row index grows (ImageOrientationPatient[3:]).
        pixel_spacing: (row spacing, column spacing) in mm, as DICOM PixelSpacing.
        rows, columns: slice size in pixels.
    """

    series_uid: str
    sop_uids: list[str]
    positions_lps: np.ndarray
    row_direction: np.ndarray
    column_direction: np.ndarray
    pixel_spacing: tuple[float, float]
    rows: int
    columns: int

    def slice_of(self, contour: LidcContour, tolerance_mm: float = 0.05) -> int | None:
        """Index of the slice an outline was drawn on: by SOP UID, else by z position; None if absent."""
        if contour.sop_uid and contour.sop_uid in self._sop_index:
            return self._sop_index[contour.sop_uid]
        gaps = np.abs(self.positions_lps[:, 2] - contour.z_mm)
        best = int(np.argmin(gaps)) if len(gaps) else -1
        return best if best >= 0 and gaps[best] <= tolerance_mm else None

    def pixels_to_world(
        self, slice_index: int | None, col_row: np.ndarray, z_mm: float | None = None
    ) -> np.ndarray:
        """LPS mm of pixel centres ``(N, 2)`` (column, row) on a slice.

        For an outline on a slice the series lacks, ``slice_index`` None and ``z_mm`` place it using the
        in-plane geometry of the first slice (LIDC series are axial stacks with one in-plane position).
        """
        col_row = np.asarray(col_row, dtype=np.float64).reshape(-1, 2)
        if slice_index is None:
            origin = self.positions_lps[0].copy()
            origin[2] = float(z_mm if z_mm is not None else origin[2])
        else:
            origin = self.positions_lps[slice_index]
        d_row, d_col = self.pixel_spacing
        return (
            origin[None, :]
            + col_row[:, :1] * d_col * self.row_direction[None, :]
            + col_row[:, 1:] * d_row * self.column_direction[None, :]
        )

    @property
    def slice_spacing(self) -> float:
        """Distance between neighbouring slices (mm): the median gap, or 1 mm for a single slice."""
        normal = np.cross(self.row_direction, self.column_direction)
        along = np.sort(self.positions_lps @ normal)
        gaps = np.diff(along)
        gaps = gaps[gaps > 1e-3]
        return float(np.median(gaps)) if gaps.size else 1.0

    @property
    def _sop_index(self) -> dict[str, int]:
        return {uid: i for i, uid in enumerate(self.sop_uids)}


def read_slice_geometry(series_dir: str | os.PathLike, series_uid: str | None = None) -> SliceGeometry:
    """Read the per-slice geometry of a DICOM series from its headers (pixel data is not read).

    The slices are grouped, ordered and checked by :func:`~lungcad_transforms.data.dicom.dicom_series_slices`,
    the same code (and tolerances) that picks the files :func:`~lungcad_transforms.data.load_image` loads,
    so slice ``k`` here is slice ``k`` of the loaded volume.

    Args:
        series_dir: folder holding the series' files (other files and other series are ignored).
        series_uid: which series to read when the folder holds several; default: the one with most slices.

    Raises:
        InputError: no DICOM image in the folder, or a series that is inconsistent (orientation, spacing,
            slice positions) or whose slices lack ImagePositionPatient / ImageOrientationPatient.

    Examples:
        >>> geometry = read_slice_geometry("LIDC-IDRI-0003/<study>/<series>")  # doctest: +SKIP
        >>> geometry.positions_lps[:, 2].min(), geometry.pixel_spacing  # doctest: +SKIP
        (-204.0, (0.820312, 0.820312))
    """
    folder = Path(series_dir)
    if not folder.is_dir():
        raise InputError(folder, "DICOM series folder not found")
    slices = dicom_series_slices(folder, series_uid, largest=True)
    first = slices[0]
    if first.orientation is None or first.position is None:
        raise InputError(first.path, "slice lacks ImagePositionPatient / ImageOrientationPatient")
    orientation = np.asarray(first.orientation, dtype=np.float64)
    return SliceGeometry(
        series_uid=first.series_uid,
        sop_uids=[item.sop_uid for item in slices],
        positions_lps=np.asarray([item.position for item in slices], dtype=np.float64),
        row_direction=orientation[:3],
        column_direction=orientation[3:],
        pixel_spacing=first.pixel_spacing,
        rows=first.rows,
        columns=first.columns,
    )
