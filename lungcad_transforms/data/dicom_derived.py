"""Write an edited CT back as a derived copy of its DICOM series: every header kept but the derived-image ones."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pydicom
from pydicom.uid import generate_uid

from lungcad_transforms.data.coords import world_to_voxel
from lungcad_transforms.errors import InputError
from lungcad_transforms.utils.atomic import atomic_dir

__all__ = ["write_derived_series"]


def _series_files(folder: Path, series_uid: str) -> list[tuple[Path, pydicom.Dataset]]:
    found = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")):
        try:
            ds = pydicom.dcmread(path)
        except Exception:  # noqa: BLE001 - not DICOM: not part of the series
            continue
        if str(ds.get("SeriesInstanceUID", "")) == series_uid and "PixelData" in ds:
            found.append((path, ds))
    return found


def write_derived_series(
    source_dir: str | os.PathLike,
    series_uid: str,
    volume: np.ndarray,
    original: np.ndarray,
    source_affine_ras: np.ndarray,
    out_dir: str | os.PathLike,
    description: str,
) -> Path:
    """Write ``volume`` (HU, on the series' own ITK grid: column, row, slice) as a derived copy of a series.

    Each file of the series keeps its name and every element, except: ``ImageType`` starts with
    ``DERIVED\\SECONDARY``, ``DerivationDescription`` is ``description``, the series gets one new
    ``SeriesInstanceUID`` and every file a new ``SOPInstanceUID``; ``PixelData`` is rewritten only for
    the slices whose values differ from ``original``. The folder appears complete or not at all.

    Raises:
        InputError: the series is not found, a slice does not sit on the grid, its pixels are compressed,
            or an edited value does not fit the stored type.
    """
    source_dir, out_dir = Path(source_dir), Path(out_dir)
    files = _series_files(source_dir, series_uid)
    if not files:
        raise InputError(source_dir, f"holds no DICOM slice of series {series_uid}")
    new_series = generate_uid()
    with atomic_dir(out_dir) as tmp:
        for path, ds in files:
            k = world_to_voxel(np.asarray(ds.ImagePositionPatient, dtype=np.float64), source_affine_ras)[0][2]
            ki = int(round(k))
            if abs(k - ki) > 0.05 or not 0 <= ki < volume.shape[2]:
                raise InputError(
                    path, f"slice position {list(ds.ImagePositionPatient)} is not on the loaded grid"
                )
            edited, before = (
                volume[:, :, ki].T,
                original[:, :, ki].T,
            )  # ITK (column, row) -> DICOM (row, column)
            if not np.array_equal(edited, before):
                if ds.file_meta.TransferSyntaxUID.is_compressed:
                    raise InputError(path, "compressed pixel data: cannot write an edited copy of this slice")
                slope, intercept = float(ds.get("RescaleSlope", 1)), float(ds.get("RescaleIntercept", 0))
                stored = ds.pixel_array.astype(np.float64)
                changed = edited != before
                stored[changed] = np.rint((edited[changed] - intercept) / slope)
                dtype = ds.pixel_array.dtype
                info = np.iinfo(dtype)
                if stored.min() < info.min or stored.max() > info.max:
                    raise InputError(path, f"edited values do not fit the stored {dtype}")
                ds.PixelData = stored.astype(dtype).tobytes()
            image_type = list(ds.get("ImageType", ["ORIGINAL", "PRIMARY"]))
            ds.ImageType = ["DERIVED", "SECONDARY", *image_type[2:]]
            ds.DerivationDescription = description[:1024]
            ds.SeriesInstanceUID = new_series
            ds.SOPInstanceUID = generate_uid()
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            target = tmp / path.relative_to(source_dir)
            target.parent.mkdir(parents=True, exist_ok=True)
            ds.save_as(target, enforce_file_format=True)
    return out_dir
