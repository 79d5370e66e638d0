"""LungMaskd (the dictionary twin of LungMask) and the lung-based intensity normalisation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from lung_cases import dice, synthetic_chest
from monai.data import MetaTensor
from monai.transforms import ScaleIntensityRange

from lungcad_transforms.transforms.intensity.array import EmptyMaskWarning, MaskedNormalizeIntensity
from lungcad_transforms.transforms.intensity.dictionary import MaskedNormalizeIntensityd
from lungcad_transforms.transforms.lung.dictionary import LungMaskD, LungMaskd, LungMaskDict


def test_dictionary_version_two_keys():
    hu_a, lungs_a = synthetic_chest(seed=1)
    hu_b, lungs_b = synthetic_chest(shape=(96, 80, 8), seed=2)
    data = {"ct_a": hu_a, "ct_b": hu_b, "label": 1}
    out = LungMaskd(keys=("ct_a", "ct_b"), new_key_prefix="lung_", dilation_mm=0)(data)
    assert out["ct_a"] is hu_a and out["label"] == 1
    assert dice(out["lung_ct_a"], lungs_a) > 0.99 and dice(out["lung_ct_b"], lungs_b) > 0.99
    replaced = LungMaskD(keys="ct_a", dilation_mm=0)(data)
    np.testing.assert_array_equal(replaced["ct_a"], out["lung_ct_a"])
    assert LungMaskDict is LungMaskd


def test_masked_normalisation_and_display_range():
    hu, lungs = synthetic_chest()
    image = MetaTensor(torch.from_numpy(hu.astype(np.float32))[None], meta={"filename_or_obj": "ct.nii"})
    data = LungMaskd(keys="image", new_key_prefix="lung_", dilation_mm=0)({"image": image})
    out = MaskedNormalizeIntensityd(keys="image", mask_key="lung_image", outside_value=0.0)(data)["image"]
    inside = out[data["lung_image"] > 0]
    assert (
        isinstance(out, MetaTensor) and out.meta["filename_or_obj"] == "ct.nii" and out.dtype == torch.float32
    )
    assert abs(float(inside.mean())) < 1e-4 and abs(float(inside.std(unbiased=False)) - 1) < 1e-3
    assert float(out[0, 48, 2, 0]) == 0.0  # outside the lungs
    plain = MaskedNormalizeIntensity()(hu, lungs)
    assert isinstance(plain, np.ndarray) and plain[0, 0, 0] < -0.5  # air outside: normalised, not replaced
    with pytest.warns(EmptyMaskWarning):
        MaskedNormalizeIntensity()(hu, np.zeros_like(lungs))
    display = ScaleIntensityRange(a_min=-1200, a_max=600, b_min=0, b_max=255, clip=True)(image)
    assert float(display.min()) >= 0 and float(display.max()) <= 255


def test_dictionary_passes_the_enclosure_options():
    masker = LungMaskd(keys="ct", fill_enclosed=False, enclosed_max_mm=60.0, enclosed_min_axes=12).masker
    assert (masker.fill_enclosed, masker.enclosed_max_mm, masker.enclosed_min_axes) == (False, 60.0, 12)
    with pytest.raises(ValueError, match="enclosed_min_axes"):
        LungMaskd(keys="ct", enclosed_min_axes=14)
