"""load_image's geometry contract: a RAS MetaTensor that remembers the file's own grid and DICOM identity."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pydicom
import pytest
from torch.utils.data import default_collate

from lungcad_transforms.data.coords import lps_to_ras_affine, voxel_to_world
from lungcad_transforms.data.image_reader import DICOM_UID_KEYS, SOURCE_KEYS, load_image

SMALL_CHEST = "small/totalsegmentator/pulmonary_report_ct_cropped.nii.gz"  # LPS-ordered NIfTI
SMALL_RAS = "small/totalsegmentator/example_ct_sm.nii.gz"  # RAS-ordered NIfTI


def _index_of_source_voxel(image, source_index) -> tuple[int, ...]:
    """Where a voxel of the file lands in the loaded RAS array (found through world space)."""
    source = image.meta["source_affine"]
    world = source @ np.array([*source_index, 1.0])
    ras_index = np.linalg.solve(np.asarray(image.affine, dtype=np.float64), world)[:3]
    return tuple(int(v) for v in np.rint(ras_index))


def test_dicom_series_is_ras_and_keeps_its_lps_grid_and_uids(lidc_0003):
    image = load_image(lidc_0003)
    meta = image.meta
    assert tuple(image.shape) == (1, 512, 512, 11) and image.dtype.is_floating_point
    affine = np.asarray(image.affine, dtype=np.float64)
    assert np.all(np.diag(affine)[:3] > 0)  # RAS: every index axis grows towards R, A, S
    np.testing.assert_allclose(np.asarray(image.pixdim), [0.820312, 0.820312, 2.5], atol=1e-5)
    assert set(SOURCE_KEYS) <= set(meta) and set(DICOM_UID_KEYS) <= set(meta)
    # ITK orders a DICOM series as the files do: columns, rows (LPS), slices inferior to superior
    assert meta["source_axcodes"] == "LPS" and tuple(meta["source_shape"]) == (512, 512, 11)

    headers = {}
    for path in lidc_0003.iterdir():
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except pydicom.errors.InvalidDicomError:
            continue  # the LIDC reader XML sits beside the slices
        headers[str(ds.SOPInstanceUID)] = ds
    uids = meta["sop_instance_uids"].split("\\")
    assert len(uids) == 11 and set(uids) == set(headers)
    first = headers[uids[0]]
    assert meta["series_instance_uid"] == str(first.SeriesInstanceUID) == meta["seriesuid"]
    assert meta["study_instance_uid"] == str(first.StudyInstanceUID)
    assert meta["frame_of_reference_uid"] == str(first.FrameOfReferenceUID)
    # slice k of the source grid is the file named k-th: its ImagePositionPatient is voxel (0, 0, k)
    source = meta["source_affine"]
    for k, uid in enumerate(uids):
        position_lps = np.array([float(v) for v in headers[uid].ImagePositionPatient])
        np.testing.assert_allclose(voxel_to_world([0, 0, k], source)[0], position_lps, atol=1e-3)
    spacing = [float(v) for v in first.PixelSpacing]
    expected = np.eye(4)
    expected[:3, :3] = np.diag([spacing[1], spacing[0], 2.5])
    expected[:3, 3] = [float(v) for v in first.ImagePositionPatient]
    np.testing.assert_allclose(source, lps_to_ras_affine(expected), atol=1e-3)
    # and the RAS array holds the file's voxels: the first file's first pixel is RAS voxel (511, 511, 0)
    assert _index_of_source_voxel(image, (0, 0, 0)) == (511, 511, 0)


def test_single_dicom_file_has_its_one_uid(real_data):
    image = load_image(real_data / "small/lungmask_tests/0.dcm")
    ds = pydicom.dcmread(real_data / "small/lungmask_tests/0.dcm", stop_before_pixels=True)
    assert tuple(image.meta["source_shape"]) == (512, 512, 1)
    assert image.meta["sop_instance_uids"] == str(ds.SOPInstanceUID)


@pytest.mark.parametrize("name, axcodes", [(SMALL_CHEST, "LPS"), (SMALL_RAS, "RAS")])
def test_nifti_keeps_the_files_affine_and_axis_order(real_data, name, axcodes):
    path = real_data / name
    stored = nib.load(path)
    image = load_image(path)
    meta = image.meta
    assert meta["source_axcodes"] == axcodes == "".join(nib.aff2axcodes(stored.affine))
    assert tuple(meta["source_shape"]) == stored.shape
    np.testing.assert_allclose(meta["source_affine"], stored.affine, atol=1e-4)
    assert meta["filename_or_obj"] == str(path) and meta["modality"] == ""
    assert all(meta[key] == "" for key in DICOM_UID_KEYS)  # present and empty: batches still collate
    # a known voxel: the file's brightest one is found again where world space says it is
    data = np.asarray(stored.dataobj)
    brightest = np.unravel_index(int(np.argmax(data)), data.shape)
    assert float(image[0][_index_of_source_voxel(image, brightest)]) == float(data[brightest])


def test_metadata_of_dicom_and_nifti_scans_collates_into_one_batch(lidc_0003, real_data):
    # a DataLoader batches the meta dicts key by key: same keys, values of one shape per key
    metas = [dict(load_image(lidc_0003).meta), dict(load_image(real_data / SMALL_CHEST).meta)]
    batch = default_collate(metas)
    assert list(batch["source_axcodes"]) == ["LPS", "LPS"]
    assert tuple(batch["source_affine"].shape) == (2, 4, 4)
    assert batch["sop_instance_uids"][1] == ""
