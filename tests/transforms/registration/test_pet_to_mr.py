"""PET onto the MR grid: world geometry in one Frame of Reference, ITK-Elastix mutual-information
registration otherwise (a known rigid offset recovered), SUV, and the refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from monai.transforms import ResampleToMatch

from lungcad_transforms.apps.mrpet.phantom_pairs import make_mrpet_pair, rigid_matrix_lps
from lungcad_transforms.data.coords import affine_lps, lps_to_ras_affine, voxel_to_world
from lungcad_transforms.errors import InputError
from lungcad_transforms.transforms.registration.array import AlignPETToMR, PETToSUV
from lungcad_transforms.transforms.registration.functional import (
    resample_through,
    rigid_error,
    save_registration,
)

pytest.importorskip("itk")
MR_SHAPE, MR_SPACING, PET_SHAPE = (64, 64, 20), (4.5, 4.5, 6.0), (32, 32, 20)


def _tensor(arr, spacing, origin, **meta) -> MetaTensor:
    img = MetaTensor(
        torch.as_tensor(np.asarray(arr, np.float32))[None],
        affine=torch.as_tensor(lps_to_ras_affine(affine_lps(spacing, origin))),
    )
    img.meta.update({"filename_or_obj": meta.pop("name", "<test>"), **meta})
    return img


def _centre(img: MetaTensor) -> np.ndarray:
    return voxel_to_world([(np.array(img.shape[1:]) - 1) / 2], img.affine)[0]


@pytest.fixture(scope="module")
def pair():
    return make_mrpet_pair(21, "both", MR_SHAPE, MR_SPACING, PET_SHAPE)


@pytest.fixture(scope="module")
def misaligned(pair):
    """The pair's PET in another frame: its voxels unchanged, its world geometry moved by a known rigid map T
    (as a PET of a separate study would be). The MR point x is then the PET point T x."""
    mr = pair["mr"]
    centre = np.asarray(mr.origin_lps) + np.asarray(MR_SHAPE) * np.asarray(MR_SPACING) / 2
    truth = rigid_matrix_lps([2.0, -1.5, 4.0], [9.0, -7.0, 5.0], centre)
    return truth


def _images(p):
    mr, pet = p["mr"], p["pet"]
    return (_tensor(p["mr_image"], mr.spacing, mr.origin_lps, name="mr"), _tensor(p["pet_suv"], pet.spacing, pet.origin_lps, name="pet"),
            _tensor(p["mask"], mr.spacing, mr.origin_lps), _tensor(p["pet_mask"], pet.spacing, pet.origin_lps))  # fmt: skip


def test_same_frame_resamples_on_world_geometry(pair):
    mr, pet, _, _ = _images(pair)
    mr.meta["frame_of_reference_uid"] = pet.meta["frame_of_reference_uid"] = "1.2.3"
    out = AlignPETToMR()(mr, pet)
    assert out.shape == mr.shape and np.allclose(out.affine, mr.affine)
    assert out.meta["registration"]["method"] == "world"
    expected = ResampleToMatch(mode="bilinear", padding_mode="zeros")(pet, img_dst=mr)
    inside = expected.as_tensor() > 0.05  # interpolation conventions differ only at the field-of-view edge
    assert float((out.as_tensor() - expected.as_tensor())[inside].abs().max()) < 0.05


def test_known_rigid_offset_is_recovered_within_2mm_and_1_degree(pair, misaligned, tmp_path):
    truth = misaligned
    mr, pet, mr_mask, pet_mask = _images(pair)
    ras = np.diag([-1.0, -1.0, 1.0, 1.0])  # RAS <-> LPS
    moved_affine = torch.as_tensor(ras @ truth @ ras @ np.asarray(pet.affine))
    pet, pet_mask = (
        MetaTensor(img.as_tensor(), affine=moved_affine, meta={"filename_or_obj": "pet"})
        for img in (pet, pet_mask)
    )
    out = AlignPETToMR(registration="auto", transform="rigid")(
        mr, pet, mr_mask, pet_mask
    )  # no Frame of Reference: registers
    record = out.meta["registration"]
    assert record["method"] == "rigid"
    error = rigid_error(np.asarray(record["matrix_lps"]), truth, _centre(mr))
    assert error["rotation_deg"] < 1.0 and error["translation_mm"] < 2.0, error
    assert record["nmi_after"] > record["nmi_before"]
    assert record["mask_dice_after"] > record["mask_dice_before"] + 0.2
    paths = save_registration(record, tmp_path, "P1")
    saved = json.loads(paths["json"].read_text())
    assert np.allclose(saved["matrix_lps"], record["matrix_lps"]) and "parameter_map" not in saved
    assert '(Transform "EulerTransform")' in paths["elastix"].read_text()


@pytest.mark.parametrize(
    "registration, shift_mm, problem",
    [
        # registered from a start 2 m away: Elastix finds nothing to match, or leaves the MR uncovered
        ("always", 2000.0, "registration onto .* failed|after rigid alignment the PET covers"),
        # world geometry only: the PET lies beside the MR box
        ("never", 115.0, "after world alignment the PET covers .* do not overlap"),
    ],
)
def test_pet_that_does_not_overlap_the_mr_after_alignment_is_refused(pair, registration, shift_mm, problem):
    mr, _, _, _ = _images(pair)
    origin = np.asarray(pair["pet"].origin_lps) + [0.0, 0.0, shift_mm]
    away = _tensor(pair["pet_suv"], pair["pet"].spacing, origin, name="away_pet")
    with pytest.raises(InputError, match=problem) as raised:
        AlignPETToMR(registration=registration, min_overlap=0.2)(mr, away)
    assert "away_pet" in str(raised.value)


def test_registration_needs_3d(pair):
    mr, pet, _, _ = _images(pair)
    with pytest.raises(InputError, match="2-D"):
        AlignPETToMR(registration="always")(mr[..., 10:11], pet)


def test_dicom_mr_and_pet_of_different_patients_are_refused(tmp_path, pair):
    from lungcad_transforms.data.dicom_writer import write_dicom_series
    from lungcad_transforms.data.image_reader import load_image

    mr, pet = pair["mr"], pair["pet"]
    write_dicom_series(
        pair["mr_image"][:, :, :6], mr.spacing, mr.origin_lps, tmp_path / "MR", "MR", patient_id="A"
    )
    write_dicom_series(
        pair["pet_suv"][:, :, :6], pet.spacing, pet.origin_lps, tmp_path / "PT", "PT", patient_id="B"
    )
    mr_img, pet_img = load_image(tmp_path / "MR"), load_image(tmp_path / "PT")
    with pytest.raises(InputError, match="patient 'B' paired with the MR of patient 'A'"):
        AlignPETToMR()(mr_img, pet_img)
    suv = PETToSUV()(pet_img)  # Bq/ml with the radiopharmaceutical tags: back to the phantom's SUV
    assert suv.meta["pet_units"] == "suv"
    assert np.allclose(suv.as_tensor().max().item(), pair["pet_suv"][:, :, :6].max(), rtol=0.02)


def test_pet_without_tags_is_taken_as_stored(pair):
    pet = _tensor(pair["pet_suv"], pair["pet"].spacing, pair["pet"].origin_lps)
    assert PETToSUV()(pet).meta["pet_units"] == "as stored"
    with pytest.raises(InputError):
        PETToSUV("bqml")(pet)


def test_resample_through_identity_keeps_a_same_grid_image(pair):
    mr, _, _, _ = _images(pair)
    assert torch.allclose(resample_through(mr, mr).as_tensor(), mr.as_tensor(), atol=1e-3)
