"""LoadScan / LoadScand on an image already in memory: the same geometry contract as the file path."""

from __future__ import annotations

import copy
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from image_checks import LPS_TO_RAS
from monai.data import MetaTensor

from lungcad_transforms.apps.phantoms.ct import make_ct_phantom
from lungcad_transforms.data.image_reader import load_image
from lungcad_transforms.errors import InputError
from lungcad_transforms.transforms import LoadScan, LoadScand


@pytest.fixture(scope="module")
def phantom():
    # X != Y and anisotropic spacing, so a transposed or mirrored volume cannot pass
    return make_ct_phantom((40, 32, 12), spacing=(0.8, 0.7, 2.0), seed=5, nodule_kinds=("solid",))


@pytest.fixture(scope="module")
def from_file(phantom, tmp_path_factory) -> MetaTensor:
    path = tmp_path_factory.mktemp("nifti") / "ct.nii.gz"
    nib.save(nib.Nifti1Image(phantom.hu, LPS_TO_RAS @ phantom.affine_lps()), path)
    return load_image(path)


def _deploy_input(phantom) -> MetaTensor:
    """What MONAI Deploy's bundle operator hands over for a DICOM CT series: (X, Y, Z) without channel,
    the series' NIfTI (RAS) affine in a volume labelled LPS, the DICOM keywords in the metadata."""
    nifti = LPS_TO_RAS @ phantom.affine_lps()
    meta = {
        "affine": nifti.copy(),
        "original_affine": nifti.copy(),
        "nifti_affine_transform": nifti.copy(),
        "space": "LPS",
        "spacing": np.asarray(phantom.spacing),
        "spatial_shape": np.asarray(phantom.hu.shape),
        "original_channel_dim": "no_channel",
        "SeriesInstanceUID": "1.2.826.0.1.3680043.2.1125.1",
        "StudyInstanceUID": "1.2.826.0.1.3680043.2.1125.2",
        "Modality": "CT",
    }
    return MetaTensor.ensure_torch_and_prune_meta(phantom.hu.astype(np.float32), meta)


def _same_geometry(got: MetaTensor, want: MetaTensor) -> None:
    assert tuple(got.shape) == tuple(want.shape) and got.dtype == torch.float32
    np.testing.assert_array_equal(got.numpy(), want.numpy())
    np.testing.assert_allclose(got.affine.numpy(), want.affine.numpy(), atol=1e-6)
    np.testing.assert_allclose(got.meta["source_affine"], want.meta["source_affine"], atol=1e-6)
    assert got.meta["source_axcodes"] == want.meta["source_axcodes"]
    np.testing.assert_array_equal(got.meta["source_shape"], want.meta["source_shape"])


def test_deploy_operator_input_loads_as_the_file_does(phantom, from_file):
    given = _deploy_input(phantom)
    before, before_meta = given.clone(), copy.deepcopy(dict(given.meta))
    out = LoadScand("image")({"image": given})
    _same_geometry(out["image"], from_file)
    assert out["seriesuid"] == out["image"].meta["series_instance_uid"] == "1.2.826.0.1.3680043.2.1125.1"
    assert out["image"].meta["study_instance_uid"] == "1.2.826.0.1.3680043.2.1125.2"
    assert out["image"].meta["modality"] == "CT"
    assert out["image"].meta["filename_or_obj"] == "<in-memory image>"
    # the caller's image is untouched: same values, no channel added, same metadata
    assert tuple(given.shape) == phantom.hu.shape
    assert torch.equal(given.as_tensor(), before.as_tensor())
    assert set(given.meta) == set(before_meta) and given.meta["space"] == "LPS"


def test_lps_affine_is_converted(phantom, from_file):
    # a volume really in LPS (MONAI's ITKReader with affine_lps_to_ras=False): the affine is flipped to RAS
    given = MetaTensor(torch.as_tensor(phantom.hu, dtype=torch.float32)[None], affine=phantom.affine_lps())
    given.meta["space"] = "LPS"
    _same_geometry(LoadScan()(given), from_file)


def test_array_with_meta_dict_and_channel_last(phantom, from_file):
    meta = {
        "affine": LPS_TO_RAS @ phantom.affine_lps(),
        "original_channel_dim": -1,
        "filename_or_obj": "pacs://ct",
    }
    data = {"image": phantom.hu[..., None].astype(np.float32), "image_meta_dict": meta}
    out = LoadScand("image")(data)
    _same_geometry(out["image"], from_file)
    assert out["image"].meta["filename_or_obj"] == "pacs://ct" and out["seriesuid"] == "in_memory"
    assert data["image"].shape == (*phantom.hu.shape, 1)  # not modified


def test_the_file_path_is_unchanged(phantom, from_file, tmp_path: Path):
    path = tmp_path / "ct.nii.gz"
    nib.save(nib.Nifti1Image(phantom.hu, LPS_TO_RAS @ phantom.affine_lps()), path)
    out = LoadScand("image")({"image": str(path)})
    _same_geometry(out["image"], from_file)
    assert out["seriesuid"] == "ct" and out["image"].meta["filename_or_obj"] == str(path)


def test_array_without_geometry_is_refused(phantom):
    with pytest.raises(InputError, match=r"<in-memory image>: .*'affine'"):
        LoadScan()(phantom.hu.astype(np.float32))


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (np.full((6, 6), -1000.0, dtype=np.float32), "expected one 3-D volume"),
        (np.full((6, 6, 4), np.nan, dtype=np.float32), "NaN or infinite"),
    ],
)
def test_bad_in_memory_volume_names_its_source(values, message):
    with pytest.raises(InputError, match=f"pacs://ct.*{message}"):
        LoadScan()(values, {"affine": np.eye(4), "filename_or_obj": "pacs://ct"})
