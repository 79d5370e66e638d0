"""Edit CT files with CT-GAN: written in the input's own form, every edit logged in LUNA16 coordinates."""

from __future__ import annotations

import csv
import datetime
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lungcad_transforms.apps.ctgan.editor import NoduleEditor
from lungcad_transforms.errors import InputError
from lungcad_transforms.utils.atomic import atomic_file

logger = logging.getLogger(__name__)

__all__ = ["EDIT_LOG_COLUMNS", "edit_file", "edit_scans"]


EDIT_LOG_COLUMNS = (
    "seriesuid",
    "coordX",
    "coordY",
    "coordZ",
    "diameter_mm",
    "edit",
    "input",
    "output",
    "time",
)


def _log_edit(log_csv: Path, row: dict[str, Any]) -> None:
    rows: list[dict[str, str]] = []
    if log_csv.is_file():
        with open(log_csv, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    rows.append({k: str(row.get(k, "")) for k in EDIT_LOG_COLUMNS})
    with atomic_file(log_csv) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=EDIT_LOG_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def edit_file(
    input_path: str | os.PathLike,
    output_path: str | os.PathLike,
    edit: str,
    at: Sequence[float],
    diameter_mm: float = 8.0,
    bundle_dir: str | os.PathLike | None = None,
    log_csv: str | os.PathLike | None = None,
    editor: NoduleEditor | None = None,
) -> Path:
    """Inject (``edit="inject"``) or remove a nodule at ``at`` (LPS mm) in a CT file; write it in the input's form.

    A DICOM series folder gives a derived DICOM series folder (see
    :func:`~lungcad_transforms.data.dicom_derived.write_derived_series`); NIfTI / MetaImage give the same
    format on the input's own grid. Only voxels of the edited cube change. The edit is appended to
    ``log_csv`` (default ``edits.csv`` beside the output).

    Raises:
        InputError: bad input (see :class:`NoduleEditor`), or an output form that does not match the input.
    """
    from lungcad_transforms.data.dicom_derived import write_derived_series
    from lungcad_transforms.data.image_reader import load_image
    from lungcad_transforms.data.image_writer import to_source_grid, write_image

    if edit not in ("inject", "remove"):
        raise InputError(str(input_path), f"edit must be 'inject' or 'remove', got {edit!r}")
    input_path, output_path = Path(input_path), Path(output_path)
    editor = editor or NoduleEditor(bundle_dir)
    ct = load_image(input_path)
    edited = editor.inject(ct, at, diameter_mm) if edit == "inject" else editor.remove(ct, at)
    if input_path.is_dir():
        if output_path.suffix:
            raise InputError(
                output_path, "a DICOM series input is written as a DICOM series folder: give a folder"
            )
        volume, source_affine = to_source_grid(edited)
        original, _ = to_source_grid(ct)
        what = f"CT-GAN {edit} at LPS ({at[0]:.1f}, {at[1]:.1f}, {at[2]:.1f}) mm" + (
            f", diameter {diameter_mm:.1f} mm" if edit == "inject" else ""
        )
        write_derived_series(input_path, ct.meta["series_instance_uid"], volume, original,
                             _lps_affine_of(source_affine), output_path, what)  # fmt: skip
    else:
        values = edited.numpy()
        whole = np.array_equal(values, np.rint(values)) and values.min() >= -32768 and values.max() <= 32767
        write_image(edited, output_path, dtype=np.int16 if whole else np.float32)  # CT in whole HU: int16
    _log_edit(
        Path(log_csv) if log_csv else output_path.parent / "edits.csv",
        {"seriesuid": ct.meta.get("seriesuid", ""), "coordX": at[0], "coordY": at[1], "coordZ": at[2],
         "diameter_mm": diameter_mm if edit == "inject" else "", "edit": edit, "input": input_path,
         "output": output_path, "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")},
    )  # fmt: skip
    return output_path


def _lps_affine_of(source_affine_ras: np.ndarray) -> np.ndarray:
    # world_to_voxel takes a RAS affine and LPS points: the source affine is already RAS
    return source_affine_ras


def edit_scans(
    edits_csv: str | os.PathLike,
    scans: Any,
    output_dir: str | os.PathLike,
    bundle_dir: str | os.PathLike | None = None,
    default_edit: str = "remove",
) -> Path:
    """Apply a table of edits (``seriesuid,coordX,coordY,coordZ[,diameter_mm][,edit]``) to scans; one output per edit.

    ``scans`` is what :func:`~lungcad_transforms.data.datasets.resolve_scans` accepts; rows of other series
    are skipped (one table serves all splits; a LUNA16 ``annotations.csv`` given as it is removes its
    nodules: ``default_edit`` applies where a row has no ``edit``). Outputs are
    ``<output_dir>/<seriesuid>_<row>_<edit>.nii.gz`` (folders for DICOM input), logged in ``edits.csv``.

    Raises:
        InputError: no row of the table belongs to any of the scans.
    """
    from lungcad_transforms.data.datasets import resolve_scans

    output_dir = Path(output_dir)
    by_uid = {s["seriesuid"]: s for s in resolve_scans(scans)}
    with open(edits_csv, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    if not any(row.get("seriesuid") in by_uid for row in rows):
        raise InputError(edits_csv, "no row belongs to any of the scans")
    editor = NoduleEditor(bundle_dir)
    refused = 0
    for i, row in enumerate(rows):
        uid = row["seriesuid"]
        if uid not in by_uid:
            continue
        image = Path(by_uid[uid]["image"])
        edit = row.get("edit") or default_edit
        name = f"{uid}_{i}_{edit}" + ("" if image.is_dir() else ".nii.gz")
        at = [float(row[k]) for k in ("coordX", "coordY", "coordZ")]
        try:
            edit_file(image, output_dir / name, edit, at, float(row.get("diameter_mm") or 8.0),
                      log_csv=output_dir / "edits.csv", editor=editor)  # fmt: skip
        except InputError as err:  # one refused location (near the border, outside the lungs) spoils no other
            logger.warning("edit of row %d skipped: %s", i + 2, err)
            refused += 1
    if refused == len([r for r in rows if r.get("seriesuid") in by_uid]):
        raise InputError(edits_csv, "every edit was refused (see the warnings)")
    return output_dir
