"""DICOM series writer (CT, PT, MR): read back through ITK and pydicom."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from image_checks import LPS_TO_RAS, load, load_ras, tree_digest
from pydicom.uid import UID

from lungcad_transforms.apps.phantoms.pet_mr import make_mr_phantom, make_pet_phantom
from lungcad_transforms.apps.phantoms.results import CTPhantom
from lungcad_transforms.data.dicom_writer import write_dicom_series


def test_dicom_ct_round_trip_through_itk(writer_ct: CTPhantom, tmp_path: Path):
    folder = write_dicom_series(
        writer_ct.hu, writer_ct.spacing, writer_ct.origin_lps, tmp_path / "ct", seriesuid=writer_ct.seriesuid
    )
    image = load(folder)
    assert tuple(image.shape) == writer_ct.hu.shape
    np.testing.assert_allclose(image.affine.numpy(), LPS_TO_RAS @ writer_ct.affine_lps(), atol=1e-4)
    np.testing.assert_array_equal(image.numpy(), writer_ct.hu)  # HU are integers: no rescale rounding
    ras = load_ras(folder)
    np.testing.assert_array_equal(ras[0].numpy(), writer_ct.hu[::-1, ::-1, :])
    assert (ras[0].numpy() == -2048).any()  # the padding outside the field of view survives


def test_dicom_ct_headers_through_pydicom(writer_ct: CTPhantom, tmp_path: Path):
    folder = write_dicom_series(
        writer_ct.hu, writer_ct.spacing, writer_ct.origin_lps, tmp_path / "ct", seriesuid=writer_ct.seriesuid
    )
    files = sorted(folder.glob("*.dcm"))
    assert len(files) == writer_ct.hu.shape[2]
    slices = sorted((pydicom.dcmread(f) for f in files), key=lambda d: int(d.InstanceNumber))
    uids = {str(d.SOPInstanceUID) for d in slices}
    assert len(uids) == len(slices) and all(UID(u).is_valid for u in uids)
    for k, ds in enumerate(slices):
        assert ds.Modality == "CT" and ds.SeriesInstanceUID == writer_ct.seriesuid
        assert (ds.Rows, ds.Columns) == (writer_ct.hu.shape[1], writer_ct.hu.shape[0])
        np.testing.assert_allclose(
            [float(v) for v in ds.PixelSpacing], [writer_ct.spacing[1], writer_ct.spacing[0]]
        )
        assert [float(v) for v in ds.ImageOrientationPatient] == [1, 0, 0, 0, 1, 0]
        expected_position = np.asarray(writer_ct.origin_lps) + [0, 0, k * writer_ct.spacing[2]]
        np.testing.assert_allclose([float(v) for v in ds.ImagePositionPatient], expected_position, atol=1e-6)
        assert float(ds.SliceThickness) == float(ds.SpacingBetweenSlices) == writer_ct.spacing[2]
        assert ds.pixel_array.dtype == np.int16
        hu = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        np.testing.assert_array_equal(hu, writer_ct.hu[:, :, k].T)
    assert len({str(d.StudyInstanceUID) for d in slices}) == 1
    # same arguments, same bytes: nothing time-based in the files
    again = write_dicom_series(
        writer_ct.hu,
        writer_ct.spacing,
        writer_ct.origin_lps,
        tmp_path / "again",
        seriesuid=writer_ct.seriesuid,
    )
    assert tree_digest(folder) == tree_digest(again)


def test_dicom_pet_stores_bqml_and_suv_comes_back(tmp_path: Path):
    pet = make_pet_phantom((40, 36, 12), seed=4, n_lesions=1)
    weight, dose = 82.0, 3.2e8
    folder = write_dicom_series(
        pet.suv, pet.spacing, pet.origin_lps, tmp_path / "pt", "PT", seriesuid=pet.seriesuid,
        patient_weight_kg=weight, injected_dose_bq=dose, injection_time="093000", series_time="103000",
    )  # fmt: skip
    slices = sorted((pydicom.dcmread(f) for f in folder.glob("*.dcm")), key=lambda d: int(d.InstanceNumber))
    first = slices[0]
    assert first.Modality == "PT" and first.Units == "BQML" and first.DecayCorrection == "START"
    info = first.RadiopharmaceuticalInformationSequence[0]
    decayed = float(info.RadionuclideTotalDose) * 2 ** (-3600.0 / float(info.RadionuclideHalfLife))
    suv_per_bqml = float(first.PatientWeight) * 1000.0 / decayed
    assert float(first.PatientWeight) == weight and float(info.RadionuclideTotalDose) == dose
    assert str(info.RadiopharmaceuticalStartTime) == "093000" and str(first.SeriesTime) == "103000"
    slope = float(first.RescaleSlope)
    suv = np.stack([d.pixel_array * float(d.RescaleSlope) + float(d.RescaleIntercept) for d in slices], -1)
    suv = suv.transpose(1, 0, 2) * suv_per_bqml
    np.testing.assert_allclose(suv, pet.suv, atol=slope * suv_per_bqml)
    assert pet.suv.max() / (slope * suv_per_bqml) > 1000  # the 16-bit scale is well used
    suv_module = pytest.importorskip("lungcad_transforms.data.suv")
    assert suv_module.suv_body_weight_factor(folder) == pytest.approx(suv_per_bqml, rel=1e-6)
    # ITK applies the rescale: Bq/ml per voxel, in the same geometry
    image = load(folder)
    np.testing.assert_allclose(image.affine.numpy(), LPS_TO_RAS @ pet.affine_lps(), atol=1e-4)
    np.testing.assert_allclose(image.numpy() * suv_per_bqml, pet.suv, atol=slope * suv_per_bqml * 1.01)


def test_dicom_mr_is_unsigned_and_reads_back(tmp_path: Path):
    mr = make_mr_phantom((40, 40, 8), seed=1, n_lesions=0)
    folder = write_dicom_series(mr.intensity, mr.spacing, mr.origin_lps, tmp_path / "mr", "MR")
    ds = pydicom.dcmread(sorted(folder.glob("*.dcm"))[0])
    assert ds.Modality == "MR" and ds.pixel_array.dtype == np.uint16
    np.testing.assert_array_equal(load(folder).numpy(), np.rint(mr.intensity))
