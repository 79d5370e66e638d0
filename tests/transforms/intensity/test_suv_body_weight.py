"""SUVBodyWeight(d) on real PET: plausible values, explicit headers, non-PET refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
import torch
from monai.data import MetaTensor

from lungcad_transforms.data.image_reader import load_image
from lungcad_transforms.data.suv import suv_body_weight_factor
from lungcad_transforms.errors import InputError
from lungcad_transforms.transforms.intensity.array import SUVBodyWeight
from lungcad_transforms.transforms.intensity.dictionary import (
    SUVBodyWeightD,
    SUVBodyWeightd,
    SUVBodyWeightDict,
)

PT_SERIES = "pet/nsclc_radiogenomics_R01-005_petct_slab/PT_CTAC_dicom"
ACRIN = "small/acrin_flt_breast_pet_slices"


def test_suv_transform_gives_plausible_values(real_data: Path):
    pet = load_image(real_data / PT_SERIES)
    suv = SUVBodyWeight()(pet)
    assert isinstance(suv, MetaTensor) and suv.dtype == torch.float32
    assert suv.meta["suv_factor"] == pytest.approx(1.7739e-4, rel=1e-4)
    assert suv.meta["seriesuid"] == pet.meta["seriesuid"]
    torch.testing.assert_close(suv.as_tensor(), pet.as_tensor() * suv.meta["suv_factor"])
    body = suv[suv > 0.1]  # thigh muscle and fat in this slab
    assert 0.3 < float(body.median()) < 1.5
    assert 1.0 < float(suv.max()) < 30.0

    for name in ("ACRIN-FLT-Breast_028_PT.dcm", "ACRIN-FLT-Breast_029_PT.dcm"):
        data = SUVBodyWeightd(keys="pet")({"pet": load_image(real_data / ACRIN / name)})
        values = data["pet"]
        assert 0.3 < float(values[values > 0.1].median()) < 3.0
        assert 2.0 < float(values.max()) < 30.0  # FLT: marrow and tumour uptake
    assert SUVBodyWeightD is SUVBodyWeightd and SUVBodyWeightDict is SUVBodyWeightd


def test_explicit_header_overrides_meta(real_data: Path):
    path = real_data / ACRIN / "ACRIN-FLT-Breast_029_PT.dcm"
    bq = torch.full((1, 4, 4, 2), 10000.0)
    suv = SUVBodyWeight(header=path)(bq)
    torch.testing.assert_close(suv, bq * suv_body_weight_factor(path))
    suv = SUVBodyWeight()(
        np.full((1, 2, 2, 2), 1000.0), header=pydicom.dcmread(path, stop_before_pixels=True)
    )
    np.testing.assert_allclose(suv, 1000.0 * suv_body_weight_factor(path))


def test_non_pet_inputs_are_refused(real_data: Path, lidc_0003: Path):
    with pytest.raises(InputError, match="modality is 'CT', not PT"):
        SUVBodyWeight()(load_image(lidc_0003))
    nifti_pet = load_image(real_data / "mr_pet/sts_ibsi_cropped/STS_002/PET/nifti/image/image.nii.gz")
    with pytest.raises(InputError, match="not a readable DICOM file"):
        SUVBodyWeight()(nifti_pet)
    with pytest.raises(InputError, match="no DICOM header"):
        SUVBodyWeight()(torch.ones(1, 2, 2, 2))
