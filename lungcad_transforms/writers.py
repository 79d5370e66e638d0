"""Writers for volumes (DICOM series, NIfTI, MetaImage), LUNA16 annotation tables and the synthetic
phantom dataset that the bundles use as their embedded default data.

Every writer takes a volume in DICOM/ITK LPS index order, ``volume[i, j, k]`` with ``i`` towards the
patient's left, ``j`` towards posterior and ``k`` towards superior, plus its ``spacing`` and the LPS world
position of voxel (0, 0, 0) (``origin_lps``), exactly the fields of the phantoms in
:mod:`lungcad_transforms.phantoms`. Loading any of the written files with MONAI
``LoadImage(reader="ITKReader")`` gives the same world positions. Every output appears complete under
its final name or not at all (:func:`~lungcad_transforms.outputs.atomic_file` /
:func:`~lungcad_transforms.outputs.atomic_dir`), and nothing written depends on the clock: the same
arguments give byte-identical files.
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian, generate_uid
from pydicom.valuerep import format_number_as_ds

from .errors import InputError
from .outputs import atomic_dir, atomic_file

__all__ = [
    "LUNA16_ANNOTATION_COLUMNS",
    "write_dicom_series",
    "write_nifti",
    "write_metaimage",
    "write_annotations_csv",
    "write_phantom_dataset",
]

LUNA16_ANNOTATION_COLUMNS: tuple[str, ...] = ("seriesuid", "coordX", "coordY", "coordZ", "diameter_mm")

_SOP_CLASS = {
    "CT": "1.2.840.10008.5.1.4.1.1.2",  # CT Image Storage
    "PT": "1.2.840.10008.5.1.4.1.1.128",  # Positron Emission Tomography Image Storage
    "MR": "1.2.840.10008.5.1.4.1.1.4",  # MR Image Storage
}
_CT_INTERCEPT = -1024.0  # stored = HU + 1024, as many scanners write CT
_CT_PADDING_HU = -2048  # outside the scanner's field of view
_F18_HALF_LIFE_S = 6586.2  # 109.77 min


def _checked_volume(
    volume: Any, spacing: Any, origin_lps: Any, path: str | os.PathLike
) -> tuple[np.ndarray, tuple, tuple]:
    """Validate a volume and its geometry; bad ones raise InputError naming ``path``."""
    try:
        arr = np.asarray(volume)
    except Exception as exc:  # ragged lists and such
        raise InputError(path, f"volume is not an array: {exc}") from exc
    if arr.ndim != 3:
        raise InputError(path, f"volume must be 3-D (X, Y, Z), got shape {arr.shape}")
    if arr.size == 0:
        raise InputError(path, f"volume is empty (shape {arr.shape})")
    if arr.dtype == bool:
        arr = arr.astype(np.uint8)
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise InputError(path, f"volume must hold numbers, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.floating) and not np.isfinite(arr).all():
        raise InputError(path, "volume contains NaN or infinite values")
    try:
        sp = tuple(float(s) for s in spacing)
        org = tuple(float(o) for o in origin_lps)
    except (TypeError, ValueError) as exc:
        raise InputError(path, f"spacing and origin must be 3 numbers each: {exc}") from exc
    if len(sp) != 3 or not all(math.isfinite(s) and s > 0 for s in sp):
        raise InputError(path, f"spacing must be 3 positive finite numbers (mm), got {spacing}")
    if len(org) != 3 or not all(math.isfinite(o) for o in org):
        raise InputError(path, f"origin must be 3 finite numbers (mm), got {origin_lps}")
    return arr, sp, org


def _affine_lps(spacing: Sequence[float], origin_lps: Sequence[float]) -> np.ndarray:
    affine = np.eye(4)
    affine[:3, :3] = np.diag(spacing)
    affine[:3, 3] = origin_lps
    return affine


def _ds(value: float) -> str:
    # DICOM decimal strings hold at most 16 characters
    return format_number_as_ds(float(value))


def _dicom_time_seconds(hhmmss: str) -> float:
    text = str(hhmmss)
    return int(text[0:2]) * 3600 + int(text[2:4]) * 60 + float(text[4:] or 0)


def _stored_pixels(
    arr: np.ndarray, modality: str, out_dir, suv_to_bqml: float
) -> tuple[np.ndarray, float, float, int]:
    """Stored values (int16 / uint16), rescale slope and intercept, and the pixel representation."""
    if modality == "CT":
        hu = np.rint(arr.astype(np.float64))
        stored = hu - _CT_INTERCEPT
        if stored.min() < -32768 or stored.max() > 32767:
            raise InputError(
                out_dir, f"CT values {hu.min():.0f}..{hu.max():.0f} HU do not fit 16-bit DICOM storage"
            )
        return stored.astype(np.int16), 1.0, _CT_INTERCEPT, 1
    if modality == "PT":
        bqml = arr.astype(np.float64) * suv_to_bqml
        peak = float(np.abs(bqml).max())
        # one slope for the whole series keeps every slice on the same scale for every reader
        slope = peak / 32767.0 if peak > 0 else 1.0
        return np.rint(bqml / slope).astype(np.int16), slope, 0.0, 1
    values = np.rint(arr.astype(np.float64))
    if values.min() < 0 or values.max() > 65535:
        raise InputError(
            out_dir, f"MR values {values.min():.0f}..{values.max():.0f} do not fit unsigned 16-bit storage"
        )
    return values.astype(np.uint16), 1.0, 0.0, 0


def write_dicom_series(
    volume: Any,
    spacing: Sequence[float],
    origin_lps: Sequence[float],
    out_dir: str | os.PathLike,
    modality: str = "CT",
    seriesuid: str | None = None,
    *,
    study_uid: str | None = None,
    frame_of_reference_uid: str | None = None,
    patient_id: str = "LUNGCAD-PHANTOM",
    patient_name: str = "Phantom^Lungcad",
    study_description: str = "lungcad synthetic phantom",
    series_description: str | None = None,
    series_number: int = 1,
    study_date: str = "20240101",
    series_time: str = "120000",
    patient_weight_kg: float = 70.0,
    injected_dose_bq: float = 3.7e8,
    injection_time: str = "110000",
    half_life_s: float = _F18_HALF_LIFE_S,
) -> Path:
    """Write a volume as a DICOM series, one file per axial slice, atomically.

    CT values are Hounsfield units, stored as signed 16-bit with RescaleIntercept -1024 (and a
    PixelPaddingValue when the volume holds the -2048 padding of a field-of-view circle). PT values are
    body-weight SUV: they are converted to Bq/ml with the decay-corrected dose (decay correction START,
    to the series time), stored as signed 16-bit with one RescaleSlope, and the radiopharmaceutical,
    dose, half-life, injection time and patient weight are written so that SUV can be computed back. MR
    values are rounded to unsigned 16-bit.

    Geometry: slice ``k`` holds ``volume[:, :, k]`` (rows along +y, columns along +x),
    ImageOrientationPatient ``[1, 0, 0, 0, 1, 0]``, ImagePositionPatient ``origin_lps + k * (0, 0, sz)``,
    PixelSpacing ``[sy, sx]`` (row spacing first), SliceThickness and SpacingBetweenSlices ``sz``.

    Args:
        volume: (X, Y, Z) array in LPS index order.
        spacing: (sx, sy, sz) in mm.
        origin_lps: LPS world position of voxel (0, 0, 0).
        out_dir: folder to create (replaced if it exists) holding ``IM00001.dcm``...
        modality: "CT", "PT" or "MR".
        seriesuid: SeriesInstanceUID; the study, frame-of-reference and instance UIDs are derived from
            it deterministically. ``None`` draws a random one.
        study_uid, frame_of_reference_uid: to put several series (PET/CT) in one study and frame.
        patient_weight_kg, injected_dose_bq, injection_time, half_life_s: PT only, for SUV.

    Returns:
        ``Path(out_dir)``.

    Raises:
        InputError: the volume is not 3-D, empty, not finite, or its values do not fit the storage;
            nothing is left behind.

    Examples:
        >>> from lungcad_transforms.phantoms import make_ct_phantom
        >>> ct = make_ct_phantom((64, 64, 32), seed=0)
        >>> folder = write_dicom_series(ct.hu, ct.spacing, ct.origin_lps, "/tmp/lungcad_example_ct_dicom", seriesuid=ct.seriesuid)
        >>> len(list(folder.glob("*.dcm")))
        32
    """
    modality = str(modality).upper()
    if modality not in _SOP_CLASS:
        raise ValueError(f"modality must be one of {sorted(_SOP_CLASS)}, got {modality!r}")
    arr, sp, org = _checked_volume(volume, spacing, origin_lps, out_dir)
    series_uid = seriesuid or generate_uid()
    study_uid = study_uid or generate_uid(entropy_srcs=[series_uid, "study"])
    frame_uid = frame_of_reference_uid or generate_uid(entropy_srcs=[series_uid, "frame-of-reference"])
    decay_factor = 1.0
    suv_to_bqml = 1.0
    if modality == "PT":
        if not (patient_weight_kg > 0 and injected_dose_bq > 0 and half_life_s > 0):
            raise ValueError("PT needs a positive patient weight, injected dose and half-life")
        elapsed = _dicom_time_seconds(series_time) - _dicom_time_seconds(injection_time)
        if elapsed < 0:
            raise ValueError(f"injection_time {injection_time} is after series_time {series_time}")
        decay_factor = 2.0 ** (-elapsed / half_life_s)
        # body-weight SUV = C [Bq/ml] / (dose decayed to the series start [Bq] / weight [g])
        suv_to_bqml = injected_dose_bq * decay_factor / (patient_weight_kg * 1000.0)
    stored, slope, intercept, pixel_rep = _stored_pixels(arr, modality, out_dir, suv_to_bqml)
    nx, ny, nz = arr.shape
    base = _series_dataset(
        modality, series_uid, study_uid, frame_uid, patient_id, patient_name, study_description,
        series_description or f"lungcad phantom {modality}", series_number, study_date, series_time,
    )  # fmt: skip
    base.Rows, base.Columns = ny, nx
    base.PixelSpacing = [_ds(sp[1]), _ds(sp[0])]  # row spacing (along y), then column spacing (along x)
    base.SliceThickness = _ds(sp[2])
    base.SpacingBetweenSlices = _ds(sp[2])
    base.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
    base.PixelRepresentation = pixel_rep
    if modality in ("CT", "PT"):
        base.RescaleIntercept = _ds(intercept)
        base.RescaleSlope = _ds(slope)
        base.RescaleType = "HU" if modality == "CT" else "BQML"
    if modality == "CT" and (np.rint(arr) == _CT_PADDING_HU).any():
        base.PixelPaddingValue = int(_CT_PADDING_HU - _CT_INTERCEPT)
    if modality == "PT":
        _add_pet_tags(
            base,
            nz,
            patient_weight_kg,
            injected_dose_bq,
            injection_time,
            study_date,
            half_life_s,
            decay_factor,
        )

    with atomic_dir(out_dir) as tmp:
        for k in range(nz):
            ds = Dataset()
            ds.update(base)
            instance_uid = generate_uid(entropy_srcs=[series_uid, "instance", str(k)])
            ds.SOPInstanceUID = instance_uid
            ds.InstanceNumber = k + 1
            z = org[2] + k * sp[2]
            ds.ImagePositionPatient = [_ds(org[0]), _ds(org[1]), _ds(z)]
            ds.SliceLocation = _ds(z)
            if modality == "PT":
                ds.ImageIndex = k + 1
            plane = np.ascontiguousarray(stored[:, :, k].T)  # rows along y, columns along x
            ds.SmallestImagePixelValue = int(plane.min())
            ds.LargestImagePixelValue = int(plane.max())
            ds.PixelData = plane.tobytes()
            meta = FileMetaDataset()
            meta.MediaStorageSOPClassUID = _SOP_CLASS[modality]
            meta.MediaStorageSOPInstanceUID = instance_uid
            meta.TransferSyntaxUID = ExplicitVRLittleEndian
            meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
            ds.file_meta = meta
            ds.preamble = b"\0" * 128
            ds.save_as(tmp / f"IM{k + 1:05d}.dcm", enforce_file_format=True)
    return Path(out_dir)


def _series_dataset(
    modality, series_uid, study_uid, frame_uid, patient_id, patient_name, study_description,
    series_description, series_number, study_date, series_time,
) -> Dataset:  # fmt: skip
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SOPClassUID = _SOP_CLASS[modality]
    ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = study_date
    ds.StudyTime = ds.SeriesTime = ds.AcquisitionTime = ds.ContentTime = series_time
    ds.AccessionNumber = ""
    ds.Modality = modality
    ds.Manufacturer = "lungcad"
    ds.ManufacturerModelName = "synthetic phantom"
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = study_description
    ds.SeriesDescription = series_description
    ds.PatientName = patient_name
    ds.PatientID = patient_id
    ds.PatientBirthDate = ""
    ds.PatientSex = "O"
    ds.BodyPartExamined = "CHEST"
    ds.PatientPosition = "HFS"
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.StudyID = "1"
    ds.SeriesNumber = int(series_number)
    ds.AcquisitionNumber = 1
    ds.FrameOfReferenceUID = frame_uid
    ds.PositionReferenceIndicator = ""
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    if modality == "CT":
        ds.KVP = "120"
        ds.ConvolutionKernel = "STANDARD"
    if modality == "MR":
        ds.ScanningSequence = "SE"
        ds.SequenceVariant = "NONE"
        ds.ScanOptions = ""
        ds.MRAcquisitionType = "2D"
        ds.RepetitionTime = "500"
        ds.EchoTime = "12"
        ds.EchoTrainLength = 1
        ds.MagneticFieldStrength = "1.5"
    return ds


def _add_pet_tags(
    ds: Dataset, n_slices, weight_kg, dose_bq, injection_time, study_date, half_life_s, decay_factor
) -> None:
    ds.Units = "BQML"
    ds.DecayCorrection = "START"
    ds.CorrectedImage = ["DECY", "ATTN", "SCAT"]
    ds.SeriesType = ["STATIC", "IMAGE"]
    ds.CountsSource = "EMISSION"
    ds.RandomsCorrectionMethod = "DLYD"
    ds.AttenuationCorrectionMethod = "CT"
    ds.ReconstructionMethod = "OSEM"
    ds.NumberOfSlices = int(n_slices)
    ds.PatientWeight = _ds(weight_kg)
    ds.DecayFactor = _ds(1.0 / decay_factor)
    ds.FrameReferenceTime = "0"
    ds.ActualFrameDuration = 180000
    nuclide = Dataset()
    nuclide.CodeValue = "C-111A1"
    nuclide.CodingSchemeDesignator = "SRT"
    nuclide.CodeMeaning = "^18^Fluorine"
    drug = Dataset()
    drug.Radiopharmaceutical = "Fluorodeoxyglucose"
    drug.RadiopharmaceuticalStartTime = injection_time
    drug.RadiopharmaceuticalStartDateTime = f"{study_date}{injection_time}"
    drug.RadionuclideTotalDose = _ds(dose_bq)
    drug.RadionuclideHalfLife = _ds(half_life_s)
    drug.RadionuclidePositronFraction = "0.9673"
    drug.RadionuclideCodeSequence = DicomSequence([nuclide])
    ds.RadiopharmaceuticalInformationSequence = DicomSequence([drug])


def write_nifti(
    volume: Any, spacing: Sequence[float], origin_lps: Sequence[float], path: str | os.PathLike
) -> Path:
    """Write a volume as NIfTI-1 (``.nii`` or ``.nii.gz``), atomically.

    NIfTI stores RAS world coordinates, so the affine written is ``diag(-1, -1, 1) @ affine_lps``; the
    array keeps its LPS index order. Both qform and sform are set (code 1, scanner), units mm. Booleans
    are written as uint8, 64-bit integers as 32-bit when they fit; other dtypes are kept.

    Examples:
        >>> from lungcad_transforms.phantoms import make_ct_phantom
        >>> ct = make_ct_phantom((64, 64, 32), seed=0)
        >>> write_nifti(ct.hu, ct.spacing, ct.origin_lps, "/tmp/lungcad_example_ct.nii.gz").name
        'lungcad_example_ct.nii.gz'
    """
    import nibabel as nib

    arr, sp, org = _checked_volume(volume, spacing, origin_lps, path)
    if arr.dtype in (np.int64, np.uint64):
        # nibabel refuses 64-bit integers by default (few tools read them): use 32 bits when they fit
        info = np.iinfo(np.int32)
        arr = (
            arr.astype(np.int32)
            if info.min <= arr.min() and arr.max() <= info.max
            else arr.astype(np.float64)
        )
    affine_ras = np.diag([-1.0, -1.0, 1.0, 1.0]) @ _affine_lps(sp, org)
    image = nib.Nifti1Image(arr, affine_ras)
    image.header.set_xyzt_units("mm")
    image.set_qform(affine_ras, code=1)
    image.set_sform(affine_ras, code=1)
    with atomic_file(path) as tmp:
        nib.save(image, tmp)
    return Path(path)


def _itk_ready(arr: np.ndarray) -> np.ndarray:
    # the pixel types ITK's Python wrapping provides
    if arr.dtype in (np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.float32, np.float64):
        return arr
    if arr.dtype == np.int8:
        return arr.astype(np.int16)
    if np.issubdtype(arr.dtype, np.integer):
        info = np.iinfo(np.int32)
        if arr.min() >= info.min and arr.max() <= info.max:
            return arr.astype(np.int32)
        return arr.astype(np.float64)
    return arr.astype(np.float32 if arr.dtype == np.float16 else np.float64)


def write_metaimage(
    volume: Any,
    spacing: Sequence[float],
    origin_lps: Sequence[float],
    path: str | os.PathLike,
    compress: bool = True,
) -> Path:
    """Write a volume as MetaImage (``.mha`` single file, or ``.mhd`` header + ``.zraw``/``.raw`` data).

    MetaImage stores ITK's LPS physical space natively: origin, spacing and an identity direction. For
    ``.mhd`` the data file is moved into place before the header, so a reader never finds a header
    without its data.

    Examples:
        >>> from lungcad_transforms.phantoms import make_ct_phantom
        >>> ct = make_ct_phantom((64, 64, 32), seed=0)
        >>> write_metaimage(ct.hu, ct.spacing, ct.origin_lps, f"/tmp/lungcad_example_{ct.seriesuid}.mhd").suffix
        '.mhd'
    """
    import itk

    path = Path(path)
    if path.suffix.lower() not in (".mha", ".mhd"):
        raise ValueError(f"a MetaImage path ends in .mha or .mhd, got {path.name}")
    arr, sp, org = _checked_volume(volume, spacing, origin_lps, path)
    image = itk.image_from_array(
        np.ascontiguousarray(_itk_ready(arr).transpose(2, 1, 0))
    )  # ITK arrays are (z, y, x)
    image.SetSpacing(sp)
    image.SetOrigin(org)
    if path.suffix.lower() == ".mha":
        with atomic_file(path) as tmp:
            itk.imwrite(image, str(tmp), compression=compress)
        return path
    # .mhd names its data file inside the header: write both under their final names in a
    # private folder, then move the data file and, last, the header
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.stem}.", dir=path.parent))
    moved: list[Path] = []
    try:
        itk.imwrite(image, str(staging / path.name), compression=compress)
        data_files = [f for f in staging.iterdir() if f.name != path.name]
        for f in data_files:
            os.replace(f, path.parent / f.name)
            moved.append(path.parent / f.name)
        os.replace(staging / path.name, path)
    except BaseException:
        for f in moved:
            f.unlink(missing_ok=True)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return path


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


_FORMATS = {"nifti": ".nii.gz", "mhd": ".mhd", "mha": ".mha", "dicom": ""}
_DATASET_VERSION = 1


def _case_seed(seed: int, index: int) -> int:
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, index]).generate_state(1)[0])


def write_phantom_dataset(
    out_dir: str | os.PathLike,
    n_cases: int,
    seed: int = 0,
    shape: Sequence[int] = (128, 128, 128),
    formats: Sequence[str] = ("nifti",),
    *,
    spacing: Sequence[float] | None = None,
    n_nodules: int | None = None,
    nodule_kinds: Sequence[str] | None = None,
    fov_circle: bool = False,
    val_fraction: float = 0.2,
    test_fraction: float = 0.0,
    overwrite: bool = False,
) -> Path:
    """Write a synthetic chest-CT dataset with LUNA16-style annotations and a MONAI datalist.

    Layout of ``out_dir``::

        datalist.json        {"training": [...], "validation": [...], "test": [...]}
        annotations.csv      LUNA16 form, every nodule of every case (LPS mm)
        nodules.csv          the same rows plus the nodule kind
        phantom_dataset.json the arguments it was written with
        images/<seriesuid>.nii.gz | .mha | .mhd + .zraw    one per format asked for
        dicom/<seriesuid>/IM00001.dcm ...                  when "dicom" is asked for
        labels/<seriesuid>.nii.gz    nodule labels (0 background, n = n-th nodule of the case)
        lungs/<seriesuid>.nii.gz     ground-truth lungs (uint8)

    A datalist entry holds ``image`` (the first format asked for), ``image_<format>`` for each format,
    ``label``, ``lungs``, ``seriesuid`` and ``n_nodules``; paths are relative to the datalist's folder (as
    ``monai.data.load_decathlon_datalist`` expects). The whole folder is written atomically and nothing
    depends on the clock, so the same arguments give identical files. If ``out_dir`` already holds a
    dataset written with the same arguments it is reused as it is (cheap to call on every run).

    Args:
        out_dir: the dataset folder.
        n_cases: number of CT phantoms.
        seed: case ``i`` is drawn from ``(seed, i)``.
        shape, spacing, n_nodules, nodule_kinds, fov_circle: as for
            :func:`~lungcad_transforms.phantoms.make_ct_phantom` (spacing ``None``: drawn per case).
        formats: any of "nifti", "mhd", "mha", "dicom".
        val_fraction, test_fraction: share of the cases in "validation" and "test" (at least one
            validation case when there are two cases or more and ``val_fraction`` > 0).
        overwrite: replace an ``out_dir`` that holds something else.

    Returns:
        the path of ``datalist.json``.

    Raises:
        InputError: ``out_dir`` is a file, or holds other content and ``overwrite`` is false.

    Examples:
        >>> datalist = write_phantom_dataset("/tmp/lungcad_example_phantoms", n_cases=4, shape=(96, 96, 64))
        >>> from monai.data import load_decathlon_datalist
        >>> len(load_decathlon_datalist(datalist, data_list_key="training"))
        3
    """
    from .phantoms import make_ct_phantom

    out_dir = Path(out_dir)
    formats = tuple(str(f).lower() for f in formats)
    unknown = [f for f in formats if f not in _FORMATS]
    if not formats or unknown:
        raise ValueError(f"formats must be a non-empty subset of {sorted(_FORMATS)}, got {formats}")
    if int(n_cases) < 1:
        raise ValueError(f"n_cases must be >= 1, got {n_cases}")
    if not (0 <= val_fraction and 0 <= test_fraction and val_fraction + test_fraction < 1):
        raise ValueError("val_fraction and test_fraction must be >= 0 and add up to less than 1")
    params = {
        "version": _DATASET_VERSION,
        "n_cases": int(n_cases),
        "seed": int(seed),
        "shape": [int(s) for s in shape],
        "formats": list(formats),
        "spacing": None if spacing is None else [float(s) for s in spacing],
        "n_nodules": None if n_nodules is None else int(n_nodules),
        "nodule_kinds": None if nodule_kinds is None else [str(k) for k in nodule_kinds],
        "fov_circle": bool(fov_circle),
        "val_fraction": float(val_fraction),
        "test_fraction": float(test_fraction),
    }
    datalist_path = out_dir / "datalist.json"
    manifest = out_dir / "phantom_dataset.json"
    if out_dir.exists():
        if not out_dir.is_dir():
            raise InputError(out_dir, "exists and is not a folder")
        if manifest.is_file() and datalist_path.is_file():
            try:
                same = json.loads(manifest.read_text()) == params
            except (OSError, ValueError):
                same = False
            if same:
                return datalist_path
        if any(out_dir.iterdir()) and not overwrite:
            raise InputError(
                out_dir, "holds other content than this phantom dataset; pass overwrite=True to replace it"
            )

    n = int(n_cases)
    n_test = int(round(n * test_fraction))
    n_val = int(round(n * val_fraction))
    if val_fraction > 0 and n >= 2:
        n_val = max(n_val, 1)
    n_val = min(n_val, max(n - 1 - n_test, 0))
    n_train = n - n_val - n_test
    splits = ["training"] * n_train + ["validation"] * n_val + ["test"] * n_test

    datalist: dict[str, list[dict[str, Any]]] = {"training": [], "validation": [], "test": []}
    annotations: list[dict[str, Any]] = []
    with atomic_dir(out_dir) as tmp:
        for i in range(n):
            ct = make_ct_phantom(
                shape, spacing, seed=_case_seed(seed, i), n_nodules=n_nodules, nodule_kinds=nodule_kinds,
                fov_circle=fov_circle,
            )  # fmt: skip
            uid = ct.seriesuid
            entry: dict[str, Any] = {}
            for fmt in formats:
                if fmt == "dicom":
                    rel = f"dicom/{uid}"
                    write_dicom_series(ct.hu, ct.spacing, ct.origin_lps, tmp / rel, "CT", seriesuid=uid)
                else:
                    rel = f"images/{uid}{_FORMATS[fmt]}"
                    writer = write_nifti if fmt == "nifti" else write_metaimage
                    writer(ct.hu, ct.spacing, ct.origin_lps, tmp / rel)
                entry.setdefault("image", rel)
                entry[f"image_{fmt}"] = rel
            entry["label"] = f"labels/{uid}.nii.gz"
            entry["lungs"] = f"lungs/{uid}.nii.gz"
            write_nifti(ct.nodule_labels, ct.spacing, ct.origin_lps, tmp / entry["label"])
            write_nifti(ct.lungs.astype(np.uint8), ct.spacing, ct.origin_lps, tmp / entry["lungs"])
            entry["seriesuid"] = uid
            entry["n_nodules"] = len(ct.nodules)
            datalist[splits[i]].append(entry)
            for nodule in ct.nodules:
                x, y, z = nodule.center_lps
                annotations.append(
                    {
                        "seriesuid": uid,
                        "coordX": x,
                        "coordY": y,
                        "coordZ": z,
                        "diameter_mm": nodule.diameter_mm,
                        "kind": nodule.kind,
                    }
                )
        write_annotations_csv(annotations, tmp / "annotations.csv")
        write_annotations_csv(annotations, tmp / "nodules.csv", extra_columns=("kind",))
        with atomic_file(tmp / "datalist.json") as f:
            f.write_text(json.dumps(datalist, indent=2) + "\n")
        with atomic_file(tmp / "phantom_dataset.json") as f:
            f.write_text(json.dumps(params, indent=2) + "\n")
    return datalist_path
