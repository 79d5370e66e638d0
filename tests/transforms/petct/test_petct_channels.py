"""PET/CT channels, CT windows and the frame-of-reference check; the pair loaded onto the CT grid."""

from __future__ import annotations

import pytest
import torch

from lungcad_transforms.errors import InputError
from lungcad_transforms.transforms.petct.dictionary import PETCTChannelsd
from lungcad_transforms.transforms.petct.functional import check_same_frame, ct_window_bounds, petct_channels


def test_channels_window_ct_and_scale_suv():
    ct = torch.tensor([[[-2000.0, -600.0, 40.0, 3000.0]]])
    pet = torch.tensor([[[0.0, 2.5, 5.0, 40.0]]])
    x = petct_channels(ct, pet, "lung", suv_max=5.0, mode="ct_pet_fused")
    assert x.shape == (3, 1, 4)
    assert torch.allclose(x[0, 0], torch.tensor([0.0, 0.5, 1390 / 1500, 1.0]))
    assert torch.allclose(x[1, 0], torch.tensor([0.0, 0.5, 1.0, 1.0]))
    assert torch.allclose(x[2], 0.5 * (x[0] + x[1]))
    two = PETCTChannelsd(mode="ct_pet", window=[-1000, 400])({"ct": ct, "pet": pet})["image"]
    assert two.shape == (2, 1, 4)
    assert ct_window_bounds("mediastinal") == (-135.0, 215.0)
    with pytest.raises(ValueError):
        petct_channels(ct, pet[..., :2])


def test_different_frames_of_reference_are_refused_unless_allowed():
    ct, pet = (
        {"frame_of_reference_uid": "1.2.3"},
        {"frame_of_reference_uid": "1.2.4", "filename_or_obj": "PT"},
    )
    with pytest.raises(InputError, match="Frame of Reference"):
        check_same_frame(ct, pet)
    assert check_same_frame(ct, pet, allow_mismatch=True) is False
    assert check_same_frame(ct, {"frame_of_reference_uid": ""}) is False  # NIfTI: cannot tell


def test_real_nsclc_petct_slab_loads_in_suv_on_the_ct_grid(real_data):
    from lungcad_transforms.transforms.petct.array import LoadPETCT

    slab = real_data / "pet" / "nsclc_radiogenomics_R01-005_petct_slab"
    ct, pet = LoadPETCT()(slab / "CT_dicom", slab / "PT_CTAC_dicom")
    assert ct.shape == pet.shape == (1, 512, 512, 10)
    assert torch.allclose(ct.affine, pet.affine.to(ct.affine.dtype))
    assert round(pet.meta["suv_factor"] * 1e4, 3) == 1.774
    # thighs: muscle around SUV 1, nothing wildly hot, zero outside the PET field of view
    assert 0.0 <= float(pet.min()) and 0.5 < float(pet.max()) < 20.0
