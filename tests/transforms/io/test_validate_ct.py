"""ValidateCT: real CT accepted, non-CT and bad arrays refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from lungcad_transforms.data.image_reader import load_image
from lungcad_transforms.errors import InputError
from lungcad_transforms.transforms.io.array import ValidateCT
from lungcad_transforms.transforms.io.dictionary import ValidateCTD, ValidateCTd, ValidateCTDict

LIDC_0003_SERIESUID = "1.3.6.1.4.1.14519.5.2.1.6279.6001.170706757615202213033480003264"
LIDC_0002_SERIESUID = "1.3.6.1.4.1.14519.5.2.1.6279.6001.619372068417051974713149104919"
PETCT = "pet/nsclc_radiogenomics_R01-005_petct_slab"


def test_validate_ct_accepts_real_ct(lidc_0003: Path):
    ct = load_image(lidc_0003)
    assert ValidateCT()(ct) is ct
    data = {"image": ct, "label": torch.zeros(1)}
    out = ValidateCTd(keys="image")(data)
    assert out["image"] is ct and out["label"] is data["label"]
    assert ValidateCTD is ValidateCTd and ValidateCTDict is ValidateCTd
    # an unlabelled-modality NIfTI passes on its values (HU with air)
    assert ValidateCT()(np.full((1, 4, 4, 4), -1000.0, np.float32)).shape == (1, 4, 4, 4)


def test_validate_ct_refuses_non_ct(real_data: Path):
    pet = load_image(real_data / PETCT / "PT_CTAC_dicom")
    with pytest.raises(InputError, match="modality is 'PT', not CT") as info:
        ValidateCT()(pet)
    assert info.value.path == pet.meta["filename_or_obj"]
    mr = load_image(
        real_data / "small/totalsegmentator/example_mr_sm.nii.gz"
    )  # modality unknown, values >= -47
    with pytest.raises(InputError, match="not CT Hounsfield units"):
        ValidateCTd(keys="image")({"image": mr})


def test_validate_ct_refuses_bad_arrays():
    with pytest.raises(InputError, match=r"got shape \(1, 8, 8\)"):
        ValidateCT()(MetaTensor(torch.full((1, 8, 8), -1000.0), meta={"filename_or_obj": "slice.png"}))
    with pytest.raises(InputError, match=r"got shape \(2, 8, 8, 8\)"):
        ValidateCT()(torch.full((2, 8, 8, 8), -1000.0))
    nan = torch.full((1, 8, 8, 8), -1000.0)
    nan[0, 1, 1, 1] = float("nan")
    with pytest.raises(InputError, match="1 NaN or infinite"):
        ValidateCT()(nan)
    with pytest.raises(InputError, match="<array>"):
        ValidateCT()(torch.zeros((1, 8, 8, 8)))
    ValidateCTd(keys="missing", allow_missing_keys=True)({"image": torch.zeros(1)})
