"""Writers: DICOM series (CT, PT, MR), NIfTI, MetaImage, LUNA16 CSV and the phantom dataset, read back
with MONAI's ITK reader, pydicom and nibabel."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from monai.data import load_decathlon_datalist
from monai.transforms import Compose, EnsureChannelFirst, LoadImage, Orientation
from pydicom.uid import UID

from lungcad_transforms.apps.phantoms.ct import make_ct_phantom
from lungcad_transforms.apps.phantoms.dataset import write_phantom_dataset
from lungcad_transforms.apps.phantoms.pet_mr import make_mr_phantom, make_pet_phantom
from lungcad_transforms.apps.phantoms.results import NODULE_KINDS, CTPhantom
from lungcad_transforms.data.dicom_writer import write_dicom_series
from lungcad_transforms.data.image_writer import write_metaimage, write_nifti
from lungcad_transforms.data.tables import write_annotations_csv
from lungcad_transforms.errors import InputError

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


@pytest.fixture(scope="module")
def ct() -> CTPhantom:
    # X != Y and sx != sy, so a swapped PixelSpacing or a transposed slice cannot pass
    return make_ct_phantom(
        (72, 64, 24),
        spacing=(0.7, 0.8, 1.25),
        seed=7,
        nodule_kinds=("solid", "juxtapleural"),
        fov_circle=True,
    )


def load(path) -> np.ndarray:
    return LoadImage(reader="ITKReader", image_only=True)(str(path))


def load_ras(path):
    return Compose(
        [LoadImage(reader="ITKReader", image_only=True), EnsureChannelFirst(), Orientation(axcodes="RAS")]
    )(str(path))


def tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def assert_nodules_on_labels(phantom: CTPhantom, labels_ras) -> None:
    """Each nodule's LPS centre, mapped through the loaded image's RAS affine, lands on its label."""
    coords = pytest.importorskip("lungcad_transforms.data")
    centres = np.array([n.center_lps for n in phantom.nodules])
    index = coords.world_to_voxel(centres, labels_ras.affine)
    for number, ijk in enumerate(np.floor(index + 0.5).astype(int), start=1):
        assert int(labels_ras[0][tuple(ijk)]) == number


def test_dicom_ct_round_trip_through_itk(ct: CTPhantom, tmp_path: Path):
    folder = write_dicom_series(ct.hu, ct.spacing, ct.origin_lps, tmp_path / "ct", seriesuid=ct.seriesuid)
    image = load(folder)
    assert tuple(image.shape) == ct.hu.shape
    np.testing.assert_allclose(image.affine.numpy(), LPS_TO_RAS @ ct.affine_lps(), atol=1e-4)
    np.testing.assert_array_equal(image.numpy(), ct.hu)  # HU are integers: no rescale rounding
    ras = load_ras(folder)
    np.testing.assert_array_equal(ras[0].numpy(), ct.hu[::-1, ::-1, :])
    assert (ras[0].numpy() == -2048).any()  # the padding outside the field of view survives


def test_dicom_ct_headers_through_pydicom(ct: CTPhantom, tmp_path: Path):
    folder = write_dicom_series(ct.hu, ct.spacing, ct.origin_lps, tmp_path / "ct", seriesuid=ct.seriesuid)
    files = sorted(folder.glob("*.dcm"))
    assert len(files) == ct.hu.shape[2]
    slices = sorted((pydicom.dcmread(f) for f in files), key=lambda d: int(d.InstanceNumber))
    uids = {str(d.SOPInstanceUID) for d in slices}
    assert len(uids) == len(slices) and all(UID(u).is_valid for u in uids)
    for k, ds in enumerate(slices):
        assert ds.Modality == "CT" and ds.SeriesInstanceUID == ct.seriesuid
        assert (ds.Rows, ds.Columns) == (ct.hu.shape[1], ct.hu.shape[0])
        np.testing.assert_allclose([float(v) for v in ds.PixelSpacing], [ct.spacing[1], ct.spacing[0]])
        assert [float(v) for v in ds.ImageOrientationPatient] == [1, 0, 0, 0, 1, 0]
        expected_position = np.asarray(ct.origin_lps) + [0, 0, k * ct.spacing[2]]
        np.testing.assert_allclose([float(v) for v in ds.ImagePositionPatient], expected_position, atol=1e-6)
        assert float(ds.SliceThickness) == float(ds.SpacingBetweenSlices) == ct.spacing[2]
        assert ds.pixel_array.dtype == np.int16
        hu = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        np.testing.assert_array_equal(hu, ct.hu[:, :, k].T)
    assert len({str(d.StudyInstanceUID) for d in slices}) == 1
    # same arguments, same bytes: nothing time-based in the files
    again = write_dicom_series(ct.hu, ct.spacing, ct.origin_lps, tmp_path / "again", seriesuid=ct.seriesuid)
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


def test_nifti_round_trip_keeps_world_positions(ct: CTPhantom, tmp_path: Path):
    image_path = write_nifti(ct.hu, ct.spacing, ct.origin_lps, tmp_path / "ct.nii.gz")
    labels_path = write_nifti(ct.nodule_labels, ct.spacing, ct.origin_lps, tmp_path / "labels.nii.gz")
    stored = nib.load(image_path)
    np.testing.assert_allclose(stored.affine, LPS_TO_RAS @ ct.affine_lps(), atol=1e-5)
    assert stored.header.get_xyzt_units()[0] == "mm" and int(stored.header["sform_code"]) == 1
    np.testing.assert_array_equal(np.asarray(stored.dataobj), ct.hu)
    image = load(image_path)
    np.testing.assert_allclose(image.affine.numpy(), LPS_TO_RAS @ ct.affine_lps(), atol=1e-4)
    np.testing.assert_array_equal(image.numpy(), ct.hu)
    assert_nodules_on_labels(ct, load_ras(labels_path))
    write_nifti(ct.lungs, ct.spacing, ct.origin_lps, tmp_path / "lungs.nii")
    assert nib.load(tmp_path / "lungs.nii").get_data_dtype() == np.uint8


@pytest.mark.parametrize("suffix", [".mha", ".mhd"])
def test_metaimage_round_trip(ct: CTPhantom, tmp_path: Path, suffix: str):
    image_path = write_metaimage(ct.hu, ct.spacing, ct.origin_lps, tmp_path / f"ct{suffix}")
    labels_path = write_metaimage(ct.nodule_labels, ct.spacing, ct.origin_lps, tmp_path / f"labels{suffix}")
    image = load(image_path)
    np.testing.assert_allclose(image.affine.numpy(), LPS_TO_RAS @ ct.affine_lps(), atol=1e-5)
    np.testing.assert_array_equal(image.numpy(), ct.hu)
    assert_nodules_on_labels(ct, load_ras(labels_path))
    names = sorted(p.name for p in tmp_path.iterdir())
    if suffix == ".mhd":
        assert names == ["ct.mhd", "ct.zraw", "labels.mhd", "labels.zraw"]
        assert "ElementDataFile = ct.zraw" in (tmp_path / "ct.mhd").read_text()
    else:
        assert names == ["ct.mha", "labels.mha"]


def test_annotations_csv(tmp_path: Path):
    rows = [
        {
            "seriesuid": "1.2.3",
            "coordX": -128.6994211,
            "coordY": -175.3192718,
            "coordZ": -298.3875064,
            "diameter_mm": 5.65,
        },
        {
            "seriesuid": "1.2.4",
            "coordX": 103.78,
            "coordY": -211.93,
            "coordZ": -227.12,
            "diameter_mm": 4.22,
            "kind": "solid",
        },
    ]
    path = write_annotations_csv(rows, tmp_path / "annotations.csv")
    with open(path, newline="") as f:
        table = list(csv.reader(f))
    assert table[0] == ["seriesuid", "coordX", "coordY", "coordZ", "diameter_mm"]
    assert [float(v) for v in table[1][1:]] == [-128.6994211, -175.3192718, -298.3875064, 5.65]
    coords = pytest.importorskip("lungcad_transforms.data")
    back = coords.read_annotations(path)
    assert [r["seriesuid"] for r in back] == ["1.2.3", "1.2.4"] and back[1]["coordX"] == pytest.approx(103.78)
    with pytest.raises(InputError, match="row 0: missing key 'kind'"):
        write_annotations_csv(rows, tmp_path / "kinds.csv", extra_columns=("kind",))
    with pytest.raises(InputError, match="row 0: coordZ is nan, not a finite number"):
        write_annotations_csv([{**rows[0], "coordZ": float("nan")}], tmp_path / "nan.csv")
    assert not (tmp_path / "kinds.csv").exists() and not (tmp_path / "nan.csv").exists()


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


def test_phantom_dataset(tmp_path: Path):
    kwargs = dict(seed=11, shape=(56, 48, 24), formats=("nifti", "dicom"), nodule_kinds=NODULE_KINDS[:2])
    datalist_path = write_phantom_dataset(tmp_path / "a", 3, **kwargs)
    root = datalist_path.parent
    content = json.loads(datalist_path.read_text())
    assert {k: len(v) for k, v in content.items()} == {"training": 2, "validation": 1, "test": 0}
    training = load_decathlon_datalist(datalist_path, data_list_key="training")
    entry = training[0]
    assert entry["image"] == entry["image_nifti"] and Path(entry["image_dicom"]).is_dir()
    for key in ("image", "label", "lungs"):
        assert Path(entry[key]).is_file()
    with open(root / "annotations.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["seriesuid", "coordX", "coordY", "coordZ", "diameter_mm"]
    assert len(rows) == 3 * 2 and {r["seriesuid"] for r in rows} == {
        e["seriesuid"] for v in content.values() for e in v
    }
    # every annotation lands on its nodule in that case's label image, and the DICOM copy matches
    first = make_ct_phantom((56, 48, 24), seed=_first_case_seed(11), nodule_kinds=NODULE_KINDS[:2])
    assert first.seriesuid == content["training"][0]["seriesuid"]
    assert_nodules_on_labels(first, load_ras(entry["label"]))
    np.testing.assert_array_equal(load(entry["image_dicom"]).numpy(), first.hu)
    np.testing.assert_array_equal(nib.load(entry["lungs"]).get_fdata() > 0, first.lungs)
    # deterministic, reused when asked again, protected against clobbering
    again = write_phantom_dataset(tmp_path / "b", 3, **kwargs)
    assert tree_digest(root) == tree_digest(again.parent)
    stamp = datalist_path.stat().st_mtime_ns
    assert write_phantom_dataset(tmp_path / "a", 3, **kwargs) == datalist_path
    assert datalist_path.stat().st_mtime_ns == stamp
    with pytest.raises(InputError, match="overwrite"):
        write_phantom_dataset(tmp_path / "a", 2, **kwargs)
    assert (
        len(load_decathlon_datalist(write_phantom_dataset(tmp_path / "a", 2, overwrite=True, **kwargs))) == 1
    )


def _first_case_seed(seed: int) -> int:
    from lungcad_transforms.apps.phantoms.dataset import _case_seed

    return _case_seed(seed, 0)
