"""Body-weight SUV factor from the PET DICOM header, on real PET series and hand-built headers."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import pydicom
import pytest
import torch
from monai.data import MetaTensor
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from lungcad_transforms.data.suv import suv_body_weight_factor
from lungcad_transforms.errors import InputError
from lungcad_transforms.transforms.intensity.array import SUVBodyWeight

PT_SERIES = "pet/nsclc_radiogenomics_R01-005_petct_slab/PT_CTAC_dicom"
ACRIN = "small/acrin_flt_breast_pet_slices"


def clock(tm: str) -> dt.timedelta:
    """A DICOM TM 'HHMMSS.frac' as time since midnight, parsed independently of the module under test."""
    return dt.timedelta(hours=int(tm[:2]), minutes=int(tm[2:4]), seconds=float(tm[4:]))


def hand_factor(path: Path) -> float:
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    info = ds.RadiopharmaceuticalInformationSequence[0]
    assert ds.Units == "BQML" and ds.DecayCorrection == "START"
    elapsed = (clock(ds.SeriesTime) - clock(info.RadiopharmaceuticalStartTime)).total_seconds()
    assert 0 <= elapsed < 4 * 3600  # same day in these fixtures
    decayed = float(info.RadionuclideTotalDose) * 0.5 ** (elapsed / float(info.RadionuclideHalfLife))
    return float(ds.PatientWeight) * 1000.0 / decayed


# a minimal PET header: 70 kg, 370 MBq of 18F at 10:00:00, series start 11:00:00, START
PET_TAGS = dict(Modality="PT", Units="BQML", DecayCorrection="START", PatientWeight="70", SeriesDate="20240105",
                SeriesTime="110000", AcquisitionDate="20240105", AcquisitionTime="110000")  # fmt: skip
RADIOPHARMACEUTICAL_TAGS = dict(
    RadiopharmaceuticalStartTime="100000", RadionuclideTotalDose="370000000", RadionuclideHalfLife="6586.2"
)


def pet_header(**changes) -> Dataset:
    """The header of ``PET_TAGS`` and ``RADIOPHARMACEUTICAL_TAGS`` with ``changes`` (None: the tag is absent)."""
    info, ds = Dataset(), Dataset()
    for keyword, value in {**RADIOPHARMACEUTICAL_TAGS, **PET_TAGS, **changes}.items():
        in_sequence = keyword.startswith("Radio") and keyword != "RadiopharmaceuticalInformationSequence"
        if value is not None:
            setattr(info if in_sequence else ds, keyword, value)
    if "RadiopharmaceuticalInformationSequence" not in changes:
        ds.RadiopharmaceuticalInformationSequence = Sequence([info])
    return ds


def expected(weight_kg: float, dose_bq: float, elapsed_s: float, half_life_s: float = 6586.2) -> float:
    return weight_kg * 1000.0 / (dose_bq * 2.0 ** (-elapsed_s / half_life_s))


def test_nsclc_pet_factor_matches_hand_computation(real_data: Path):
    folder = real_data / PT_SERIES
    first = sorted(folder.glob("1-0*.dcm"))[0]
    factor = suv_body_weight_factor(first)
    # 66 kg, 500.1 MBq at 16:12:00, series 16:58:52 (2812 s, 0.427 half-lives of 18F)
    assert factor == pytest.approx(hand_factor(first), rel=1e-12)
    assert factor == pytest.approx(1.7739e-4, rel=1e-4)
    assert suv_body_weight_factor(folder) == pytest.approx(factor, rel=1e-12)
    assert suv_body_weight_factor(pydicom.dcmread(first, stop_before_pixels=True)) == pytest.approx(factor)


@pytest.mark.parametrize(
    "name, factor_1e4",
    [("ACRIN-FLT-Breast_028_PT.dcm", 4.7355), ("ACRIN-FLT-Breast_029_PT.dcm", 5.9425)],
)
def test_acrin_pet_slices(real_data: Path, name: str, factor_1e4: float):
    path = real_data / ACRIN / name
    factor = suv_body_weight_factor(path)
    assert factor == pytest.approx(hand_factor(path), rel=1e-12)
    assert factor * 1e4 == pytest.approx(factor_1e4, rel=1e-4)


@pytest.mark.parametrize(
    "keyword",
    [
        "PatientWeight",
        "Units",
        "DecayCorrection",
        "RadiopharmaceuticalInformationSequence",
        "RadionuclideTotalDose",
        "RadionuclideHalfLife",
        "RadiopharmaceuticalStartTime",
        "SeriesTime+AcquisitionTime",
    ],
)
def test_missing_tag_is_named(tmp_path: Path, real_data: Path, keyword: str):
    original = real_data / ACRIN / "ACRIN-FLT-Breast_029_PT.dcm"
    digest = hashlib.sha256(original.read_bytes()).hexdigest()
    ds = pydicom.dcmread(original)
    info = ds.RadiopharmaceuticalInformationSequence[0]
    for name in keyword.split("+"):
        delattr(info if name.startswith("Radion") or name == "RadiopharmaceuticalStartTime" else ds, name)
    copy = tmp_path / "pet.dcm"
    ds.save_as(copy)
    with pytest.raises(InputError, match=keyword.split("+")[0]) as info_error:
        suv_body_weight_factor(copy)
    assert info_error.value.path == str(copy)
    with pytest.raises(InputError, match=keyword.split("+")[0]):
        SUVBodyWeight()(
            MetaTensor(torch.ones(1, 2, 2, 1), meta={"filename_or_obj": str(copy), "modality": "PT"})
        )
    assert hashlib.sha256(original.read_bytes()).hexdigest() == digest  # the input is never modified


def test_units_not_bqml(tmp_path: Path, real_data: Path):
    ds = pydicom.dcmread(real_data / ACRIN / "ACRIN-FLT-Breast_028_PT.dcm")
    ds.Units = "CNTS"
    copy = tmp_path / "counts.dcm"
    ds.save_as(copy)
    with pytest.raises(InputError, match="Units .* is 'CNTS', not BQML"):
        suv_body_weight_factor(copy)


def test_one_hour_uptake():
    assert suv_body_weight_factor(pet_header()) == pytest.approx(expected(70, 370e6, 3600))


def test_injection_before_midnight_scan_after():
    ds = pet_header(RadiopharmaceuticalStartTime="233000", SeriesTime="000500", AcquisitionTime="000500")
    assert suv_body_weight_factor(ds) == pytest.approx(expected(70, 370e6, 35 * 60))
    # the same with a full injection date-time (the day before the series date)
    ds = pet_header(
        RadiopharmaceuticalStartTime=None,
        RadiopharmaceuticalStartDateTime="20240104233000",
        SeriesTime="000500",
        AcquisitionTime="000500",
    )
    assert suv_body_weight_factor(ds) == pytest.approx(expected(70, 370e6, 35 * 60))


def test_series_before_midnight_bed_positions_after():
    # series 23:59, a bed position at 00:01 with no AcquisitionDate of its own: the series start stands
    ds = pet_header(
        RadiopharmaceuticalStartTime="230000",
        SeriesTime="235900",
        AcquisitionDate=None,
        AcquisitionTime="000100",
    )
    assert suv_body_weight_factor(ds) == pytest.approx(expected(70, 370e6, 59 * 60))


def test_fractional_seconds_and_colon_times():
    ds = pet_header(
        RadiopharmaceuticalStartTime="100000.25", SeriesTime="110000.500000", AcquisitionTime="110000.5"
    )
    assert suv_body_weight_factor(ds) == pytest.approx(expected(70, 370e6, 3600.25), rel=1e-12)
    ds = pet_header(
        RadiopharmaceuticalStartTime="10:00:00", SeriesTime="11:30:00", AcquisitionTime="11:30:00"
    )
    assert suv_body_weight_factor(ds) == pytest.approx(expected(70, 370e6, 5400))


def test_series_time_rewritten_after_acquisition_uses_acquisition_time():
    # post-processing stamped the series at 13:00, the bed positions were acquired from 11:00
    ds = pet_header(SeriesTime="130000", AcquisitionTime="110000")
    assert suv_body_weight_factor(ds) == pytest.approx(expected(70, 370e6, 3600))
    # a later bed position (acquisition after series start) does not move the reference
    ds = pet_header(SeriesTime="110000", AcquisitionTime="112500")
    assert suv_body_weight_factor(ds) == pytest.approx(expected(70, 370e6, 3600))


def test_decay_correction_admin_and_none():
    assert suv_body_weight_factor(pet_header(DecayCorrection="ADMIN")) == pytest.approx(70_000 / 370e6)
    with pytest.raises(InputError, match="DecayCorrection .* is 'NONE'"):
        suv_body_weight_factor(pet_header(DecayCorrection="NONE"))


def test_invalid_values():
    with pytest.raises(InputError, match="PatientWeight .* must be a positive number"):
        suv_body_weight_factor(pet_header(PatientWeight="0"))
    with pytest.raises(InputError, match="injection .* is after the series start"):
        suv_body_weight_factor(
            pet_header(RadiopharmaceuticalStartTime=None, RadiopharmaceuticalStartDateTime="20240105120000")
        )
    with pytest.raises(InputError, match="SeriesTime .* not a DICOM time"):
        suv_body_weight_factor(pet_header(SeriesTime="noon"))
