"""DICOM series writer: one file per slice, CT / PET / MR, with the tags viewers need."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian, generate_uid
from pydicom.valuerep import format_number_as_ds

from lungcad_transforms.data.image_writer import _checked_volume
from lungcad_transforms.errors import InputError
from lungcad_transforms.utils.atomic import atomic_dir

__all__ = ["write_dicom_series"]


_SOP_CLASS = {
    "CT": "1.2.840.10008.5.1.4.1.1.2",  # CT Image Storage
    "PT": "1.2.840.10008.5.1.4.1.1.128",  # Positron Emission Tomography Image Storage
    "MR": "1.2.840.10008.5.1.4.1.1.4",  # MR Image Storage
}


_CT_INTERCEPT = -1024.0  # stored = HU + 1024, as many scanners write CT


_CT_PADDING_HU = -2048  # outside the scanner's field of view


_F18_HALF_LIFE_S = 6586.2  # 109.77 min


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
        >>> from lungcad_transforms.apps.phantoms.ct import make_ct_phantom
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
