"""Pairing PET and CT series by study and Frame of Reference; studies that cannot be paired are reported."""

from __future__ import annotations

import shutil
from pathlib import Path

import pydicom
import pytest

from lungcad_transforms.apps.petct.phantom_studies import ensure_petct_dataset
from lungcad_transforms.apps.petct.study_pairing import pair_petct_studies
from lungcad_transforms.errors import InputError

SMALL = dict(ct_shape=(48, 48, 16), ct_spacing=(7.0, 7.0, 7.5), pet_shape=(24, 24, 8))


def _rewrite(folder: Path, edit) -> None:
    for path in sorted(folder.glob("*.dcm")):
        ds = pydicom.dcmread(path)
        edit(ds)
        ds.save_as(path)


def make_study_folder(source: Path, target: Path) -> dict[str, str]:
    """Five studies from four phantom patients: one good, one PET-only, one CT-only (the PET-only
    patient's CT, moved to its own study), one with the PET on another frame, one without SUV tags."""
    patients = sorted(p.name for p in (source / "studies").iterdir())
    roles = dict(zip(("good", "pet_only", "frame", "no_suv"), patients, strict=False))
    for role, patient in roles.items():
        shutil.copytree(source / "studies" / patient, target / role)
    shutil.move(str(target / "pet_only" / "CT"), str(target / "ct_only"))
    _rewrite(target / "ct_only", lambda ds: setattr(ds, "StudyInstanceUID", pydicom.uid.generate_uid()))
    _rewrite(
        target / "frame" / "PT", lambda ds: setattr(ds, "FrameOfReferenceUID", pydicom.uid.generate_uid())
    )
    _rewrite(target / "no_suv" / "PT", lambda ds: delattr(ds, "RadiopharmaceuticalInformationSequence"))
    return roles


@pytest.fixture(scope="module")
def study_folder(tmp_path_factory) -> Path:
    source = Path(ensure_petct_dataset(tmp_path_factory.mktemp("petct") / "d", 4, 0, 0, **SMALL))
    target = tmp_path_factory.mktemp("studies")
    make_study_folder(source, target)
    return target


def test_only_the_complete_study_is_paired_and_every_other_is_reported(study_folder):
    pairs = pair_petct_studies(study_folder)
    assert len(pairs) == 1
    good = pairs[0]
    assert good["ct"]["modality"] == "CT" and good["pet"]["modality"] == "PT"
    assert Path(good["ct"]["image"]).parent.name == "good" and good["patient"].startswith("PETCT-")
    reasons = " | ".join(reason for _, reason in pairs.skipped)
    assert len(pairs.skipped) == 4, reasons
    assert "only PET" in reasons and "only CT" in reasons
    assert "different Frames of Reference" in reasons
    assert "no usable SUV tags" in reasons and "Radiopharmaceutical" in reasons


def test_missing_folder_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        pair_petct_studies(tmp_path / "nothing")


def test_real_nsclc_slab_pairs_by_study_and_frame(real_data):
    slab = real_data / "pet" / "nsclc_radiogenomics_R01-005_petct_slab"
    if not slab.is_dir():
        pytest.skip("NSCLC-Radiogenomics PET/CT slab missing from the real test data")
    pairs = pair_petct_studies(slab)
    assert len(pairs) == 1 and pairs.skipped == []
    pair = pairs[0]
    assert pair["patient"] == "R01-005"
    assert Path(pair["ct"]["image"]).name == "CT_dicom" and Path(pair["pet"]["image"]).name == "PT_CTAC_dicom"
    ct_header = pydicom.dcmread(sorted(Path(pair["ct"]["image"]).glob("*.dcm"))[0], stop_before_pixels=True)
    assert pair["frame_of_reference_uid"] == ct_header.FrameOfReferenceUID
