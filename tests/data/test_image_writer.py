"""The writer family: results go back on the input's own voxel grid; one LPS <-> RAS flip (coords)."""

from __future__ import annotations

from pathlib import Path

import itk
import nibabel as nib
import numpy as np
import pydicom
import pytest
import torch
from monai.data import MetaTensor
from monai.transforms import Spacing

from lungcad_transforms.cli import main
from lungcad_transforms.data.coords import (
    affine_lps,
    lps_to_ras_affine,
    ras_to_lps_affine,
    voxel_to_world,
    world_to_voxel,
)
from lungcad_transforms.data.image_reader import load_image
from lungcad_transforms.data.image_writer import save_nifti, to_source_grid, write_image
from lungcad_transforms.errors import InputError
from lungcad_transforms.transforms.io.dictionary import SaveNiftid
from lungcad_transforms.transforms.lung.array import LungMask

SMALL_CHEST = "small/totalsegmentator/pulmonary_report_ct_cropped.nii.gz"  # LPS-ordered chest CT crop
SMALL_RAS = "small/totalsegmentator/example_ct_sm.nii.gz"


def _reordered(src: Path, out: Path, axes: tuple[int, int, int], flips: tuple[int, ...] = ()) -> Path:
    """The same scan stored with its voxel axes permuted (and flipped): a new file, same world."""
    stored = nib.load(src)
    data = np.asarray(stored.dataobj)
    affine = stored.affine.copy()
    for axis in flips:
        data = np.flip(data, axis)
        affine = affine @ _flip_matrix(axis, stored.shape[axis])
    data = np.ascontiguousarray(data.transpose(axes))
    affine[:3, :3] = affine[:3, :3][:, list(axes)]
    image = nib.Nifti1Image(data, affine)
    image.set_qform(affine, code=1)
    image.set_sform(affine, code=1)
    nib.save(image, out)
    return out


def _flip_matrix(axis: int, size: int) -> np.ndarray:
    flip = np.eye(4)
    flip[axis, axis] = -1.0
    flip[axis, 3] = size - 1
    return flip


@pytest.fixture(scope="module")
def chest_variants(real_data, tmp_path_factory) -> dict[str, Path]:
    """One real chest CT crop stored three ways: LPS (as shipped), axes permuted, permuted and flipped."""
    folder = tmp_path_factory.mktemp("variants")
    src = real_data / SMALL_CHEST
    return {
        "lps": src,
        "permuted": _reordered(src, folder / "permuted.nii.gz", (2, 0, 1)),
        "permuted_flipped": _reordered(src, folder / "permuted_flipped.nii.gz", (1, 2, 0), flips=(0, 2)),
    }


# ----------------------------------------------------------------------------------------------- coords --
def test_lps_ras_affine_flip_is_its_own_inverse_and_matches_voxel_to_world():
    lps = affine_lps((0.7, 0.8, 2.5), (-180.0, -200.0, -300.0))
    ras = lps_to_ras_affine(lps)
    np.testing.assert_array_equal(ras, np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps)
    np.testing.assert_array_equal(ras_to_lps_affine(ras), lps)
    np.testing.assert_array_equal(ras_to_lps_affine(torch.as_tensor(ras)), lps)
    voxel = np.array([3.0, 5.0, 7.0])
    # voxel_to_world takes a RAS affine and answers in LPS: the same point as the LPS affine gives
    np.testing.assert_allclose(voxel_to_world(voxel, ras)[0], (lps @ [*voxel, 1.0])[:3])
    np.testing.assert_allclose(world_to_voxel((lps @ [*voxel, 1.0])[:3], ras)[0], voxel)
    with pytest.raises(ValueError, match="4x4"):
        lps_to_ras_affine(np.eye(3))


# ------------------------------------------------------------------------------------------- round trip --
@pytest.mark.parametrize("variant", ["lps", "permuted", "permuted_flipped", "ras"])
def test_loaded_scan_written_back_is_the_input_file(chest_variants, real_data, tmp_path, variant):
    src = real_data / SMALL_RAS if variant == "ras" else chest_variants[variant]
    stored = nib.load(src)
    image = load_image(src)
    out = write_image(image, tmp_path / "back.nii.gz", dtype=np.int16)
    written = nib.load(out)
    assert written.shape == stored.shape
    np.testing.assert_allclose(written.affine, stored.affine, atol=1e-4)
    np.testing.assert_array_equal(np.asarray(written.dataobj), np.asarray(stored.dataobj))
    # and the metadata alone is enough: a plain array on the loaded grid, like= the scan's meta
    arr, affine = to_source_grid(np.asarray(image[0]), like=image.meta)
    np.testing.assert_array_equal(arr, np.asarray(stored.dataobj).astype(np.float32))
    np.testing.assert_allclose(affine, stored.affine, atol=1e-4)


def test_dicom_input_is_written_on_the_series_grid_in_nifti_and_metaimage(lidc_0003, tmp_path):
    image = load_image(lidc_0003)
    uids = image.meta["sop_instance_uids"].split("\\")
    nifti = nib.load(write_image(image, tmp_path / "ct.nii.gz", dtype=np.int16))
    assert nifti.shape == (512, 512, 11)
    np.testing.assert_allclose(nifti.affine, image.meta["source_affine"], atol=1e-4)
    data = np.asarray(nifti.dataobj)
    by_uid = {}
    for path in lidc_0003.iterdir():
        try:
            by_uid[str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)] = path
        except pydicom.errors.InvalidDicomError:
            continue
    for k in (0, 5, 10):
        ds = pydicom.dcmread(by_uid[uids[k]])
        hu = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        # DICOM pixel (row r, column c) of slice k is voxel (c, r, k) of the series grid
        np.testing.assert_array_equal(data[:, :, k], hu.T)
        position_lps = [float(v) for v in ds.ImagePositionPatient]
        np.testing.assert_allclose(voxel_to_world([0, 0, k], nifti.affine)[0], position_lps, atol=1e-3)
    mha = itk.imread(str(write_image(image, tmp_path / "ct.mha", dtype=np.int16)))
    first = pydicom.dcmread(by_uid[uids[0]], stop_before_pixels=True)
    np.testing.assert_allclose(
        np.asarray(mha.GetOrigin()), [float(v) for v in first.ImagePositionPatient], atol=1e-3
    )
    np.testing.assert_allclose(np.asarray(mha.GetDirection()), np.eye(3), atol=1e-6)
    np.testing.assert_array_equal(itk.array_view_from_image(mha).transpose(2, 1, 0), data)


def _ball(shape, affine, centre_lps, radius_mm) -> np.ndarray:
    grid = np.indices(shape).reshape(3, -1).T
    world = voxel_to_world(grid, affine)
    return (np.linalg.norm(world - centre_lps, axis=1) <= radius_mm).reshape(shape)


def test_result_on_another_grid_is_resampled_onto_the_source_grid(real_data):
    image = load_image(real_data / SMALL_CHEST)
    stored = nib.load(real_data / SMALL_CHEST)
    centre_lps = voxel_to_world(np.asarray(stored.shape) / 2.0, stored.affine)[0]
    label = MetaTensor(
        torch.as_tensor(
            _ball(image.shape[1:], np.asarray(image.affine), centre_lps, 20.0)[None], dtype=torch.float32
        ),
        affine=image.affine,
        meta={k: v for k, v in image.meta.items() if k != "affine"},
    )
    coarse = Spacing(pixdim=(3.0, 3.0, 3.0), mode="nearest")(label)  # a result computed at 3 mm
    assert coarse.shape != image.shape
    arr, affine = to_source_grid(coarse, like=image, mode="nearest")
    assert arr.shape == stored.shape
    np.testing.assert_allclose(affine, stored.affine, atol=1e-4)
    truth = _ball(stored.shape, stored.affine, centre_lps, 20.0)
    assert set(np.unique(arr).tolist()) == {0.0, 1.0}
    assert 2.0 * np.sum((arr > 0) & truth) / (np.sum(arr > 0) + truth.sum()) > 0.9
    np.testing.assert_allclose(voxel_to_world(np.argwhere(arr > 0).mean(0), affine)[0], centre_lps, atol=1.5)


def test_write_image_refuses_unknown_format_and_writes_nothing(real_data, tmp_path):
    image = load_image(real_data / SMALL_RAS)
    with pytest.raises(InputError, match=r"mask\.png.*NIfTI"):
        write_image(image, tmp_path / "mask.png")
    assert list(tmp_path.iterdir()) == []


def test_save_nifti_keeps_the_given_grid(tmp_path):
    affine = np.diag([0.7, 0.8, 2.5, 1.0])
    path = save_nifti(
        torch.ones(1, 4, 5, 3, dtype=torch.bool), torch.as_tensor(affine), tmp_path / "m.nii.gz"
    )
    stored = nib.load(path)
    assert stored.shape == (4, 5, 3) and stored.get_data_dtype() == np.uint8
    np.testing.assert_allclose(stored.affine, affine)


# ----------------------------------------------------------------------------------------- call sites --
@pytest.mark.parametrize("variant", ["lps", "permuted", "permuted_flipped"])
def test_lungmask_command_writes_on_the_input_grid(chest_variants, tmp_path, variant):
    src = chest_variants[variant]
    out = tmp_path / "lungs.nii.gz"
    assert main(["lungmask", str(src), str(out), "--dilation-mm", "0"]) == 0
    stored, written = nib.load(src), nib.load(out)
    assert written.shape == stored.shape
    np.testing.assert_allclose(written.affine, stored.affine, atol=1e-4)
    mask = np.asarray(written.dataobj) > 0
    hu = np.asarray(stored.dataobj)
    # voxel by voxel on the input: the masked voxels of the input file are air-filled lung
    assert mask.any() and np.median(hu[mask]) < -700 and np.median(hu[~mask]) > -200
    # a known voxel: a lung voxel of the in-memory (RAS) mask lands on the index of the same world point
    image = load_image(src)
    ras_mask = np.asarray(LungMask(dilation_mm=0.0)(image))[0] > 0
    ras_voxel = np.argwhere(ras_mask)[len(np.argwhere(ras_mask)) // 2]
    world = voxel_to_world(ras_voxel, np.asarray(image.affine))
    index = np.rint(world_to_voxel(world, written.affine)[0]).astype(int)
    assert mask[tuple(index)]
    assert int(mask.sum()) == int(ras_mask.sum())


def test_lungmask_of_permuted_input_is_the_lps_mask_permuted(chest_variants, tmp_path):
    masks = {}
    for variant in ("lps", "permuted"):
        out = tmp_path / f"{variant}.nii.gz"
        assert main(["lungmask", str(chest_variants[variant]), str(out), "--dilation-mm", "0"]) == 0
        masks[variant] = np.asarray(nib.load(out).dataobj)
    np.testing.assert_array_equal(masks["permuted"], masks["lps"].transpose(2, 0, 1))


def test_save_niftid_writes_on_the_input_grid(chest_variants, tmp_path):
    src = chest_variants["permuted_flipped"]
    image = load_image(src)
    prob = MetaTensor(
        torch.rand(image.shape),
        affine=image.affine,
        meta={k: v for k, v in image.meta.items() if k != "affine"},
    )
    d = SaveNiftid("prob", tmp_path, "prob", "float32")({"prob": prob, "seriesuid": "case"})
    written, stored = nib.load(d["prob_path"]), nib.load(src)
    assert written.shape == stored.shape
    np.testing.assert_allclose(written.affine, stored.affine, atol=1e-4)
    # the voxel the file stores first is the loaded grid's voxel at the same world point
    world = stored.affine @ [0.0, 0.0, 0.0, 1.0]
    ras_index = np.rint(np.linalg.solve(np.asarray(image.affine), world)[:3]).astype(int)
    assert np.isclose(np.asarray(written.dataobj)[0, 0, 0], float(prob[0][tuple(ras_index)]))
