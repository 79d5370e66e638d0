"""NIfTI and MetaImage writers: world positions survive a round trip; bad volumes leave nothing."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from image_checks import LPS_TO_RAS, assert_nodules_on_labels, load, load_ras

from lungcad_transforms.apps.phantoms.results import CTPhantom
from lungcad_transforms.data.dicom_writer import write_dicom_series
from lungcad_transforms.data.image_writer import write_metaimage, write_nifti
from lungcad_transforms.errors import InputError


def test_nifti_round_trip_keeps_world_positions(writer_ct: CTPhantom, tmp_path: Path):
    image_path = write_nifti(writer_ct.hu, writer_ct.spacing, writer_ct.origin_lps, tmp_path / "ct.nii.gz")
    labels_path = write_nifti(
        writer_ct.nodule_labels, writer_ct.spacing, writer_ct.origin_lps, tmp_path / "labels.nii.gz"
    )
    stored = nib.load(image_path)
    np.testing.assert_allclose(stored.affine, LPS_TO_RAS @ writer_ct.affine_lps(), atol=1e-5)
    assert stored.header.get_xyzt_units()[0] == "mm" and int(stored.header["sform_code"]) == 1
    np.testing.assert_array_equal(np.asarray(stored.dataobj), writer_ct.hu)
    image = load(image_path)
    np.testing.assert_allclose(image.affine.numpy(), LPS_TO_RAS @ writer_ct.affine_lps(), atol=1e-4)
    np.testing.assert_array_equal(image.numpy(), writer_ct.hu)
    assert_nodules_on_labels(writer_ct, load_ras(labels_path))
    write_nifti(writer_ct.lungs, writer_ct.spacing, writer_ct.origin_lps, tmp_path / "lungs.nii")
    assert nib.load(tmp_path / "lungs.nii").get_data_dtype() == np.uint8


@pytest.mark.parametrize("suffix", [".mha", ".mhd"])
def test_metaimage_round_trip(writer_ct: CTPhantom, tmp_path: Path, suffix: str):
    image_path = write_metaimage(
        writer_ct.hu, writer_ct.spacing, writer_ct.origin_lps, tmp_path / f"ct{suffix}"
    )
    labels_path = write_metaimage(
        writer_ct.nodule_labels, writer_ct.spacing, writer_ct.origin_lps, tmp_path / f"labels{suffix}"
    )
    image = load(image_path)
    np.testing.assert_allclose(image.affine.numpy(), LPS_TO_RAS @ writer_ct.affine_lps(), atol=1e-5)
    np.testing.assert_array_equal(image.numpy(), writer_ct.hu)
    assert_nodules_on_labels(writer_ct, load_ras(labels_path))
    names = sorted(p.name for p in tmp_path.iterdir())
    if suffix == ".mhd":
        assert names == ["ct.mhd", "ct.zraw", "labels.mhd", "labels.zraw"]
        assert "ElementDataFile = ct.zraw" in (tmp_path / "ct.mhd").read_text()
    else:
        assert names == ["ct.mha", "labels.mha"]


def test_bad_volumes_raise_input_error_and_leave_nothing(tmp_path: Path):
    with pytest.raises(InputError, match="3-D"):
        write_dicom_series(np.zeros((16, 16)), (1, 1, 1), (0, 0, 0), tmp_path / "flat")
    with pytest.raises(InputError, match="NaN"):
        write_nifti(np.full((4, 4, 4), np.nan, np.float32), (1, 1, 1), (0, 0, 0), tmp_path / "nan.nii.gz")
    with pytest.raises(InputError, match="spacing"):
        write_metaimage(np.zeros((4, 4, 4), np.int16), (1, -1, 1), (0, 0, 0), tmp_path / "neg.mhd")
    with pytest.raises(InputError, match="16-bit"):
        write_dicom_series(np.full((8, 8, 2), 40000.0), (1, 1, 1), (0, 0, 0), tmp_path / "hot")
    assert list(tmp_path.iterdir()) == []  # no folder, no temporary leftovers
    # an existing series is only replaced by a complete new one
    good = write_dicom_series(np.zeros((8, 8, 3), np.int16), (1, 1, 1), (0, 0, 0), tmp_path / "keep")
    with pytest.raises(InputError):
        write_dicom_series(np.zeros((8, 8)), (1, 1, 1), (0, 0, 0), good)
    assert len(list(good.glob("*.dcm"))) == 3 and sorted(p.name for p in tmp_path.iterdir()) == ["keep"]
