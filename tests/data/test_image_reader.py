"""Finding scans in folders, loading them as RAS volumes with the geometry contract, refusing bad input."""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path

import itk
import nibabel as nib
import numpy as np
import pydicom
import pytest
import torch
from monai.data import MetaTensor
from monai.transforms import LoadImage, LoadImaged, Orientation
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from lungcad_transforms.data.dicom import ITKDicomSeriesReader, dicom_series_files
from lungcad_transforms.data.image_reader import find_images, load_image
from lungcad_transforms.errors import InputError

LIDC_0003_SERIESUID = "1.3.6.1.4.1.14519.5.2.1.6279.6001.170706757615202213033480003264"
LIDC_0002_SERIESUID = "1.3.6.1.4.1.14519.5.2.1.6279.6001.619372068417051974713149104919"
PETCT = "pet/nsclc_radiogenomics_R01-005_petct_slab"


def monai_only(path: Path) -> MetaTensor:
    image = LoadImage(reader="ITKReader", ensure_channel_first=True, image_only=True)(str(path))
    return Orientation(axcodes="RAS", labels=(("L", "R"), ("P", "A"), ("I", "S")))(image)


def copy_dicom(source: Path, target: Path, **changes) -> Path:
    """A writable copy of a real DICOM file with some header values changed (None deletes the tag)."""
    ds = pydicom.dcmread(source)
    for keyword, value in changes.items():
        if value is None:
            delattr(ds, keyword)
        else:
            setattr(ds, keyword, value)
    target.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(target)
    return target


def link_series(source_dir: Path, target_dir: Path) -> list[Path]:
    target_dir.mkdir(parents=True, exist_ok=True)
    links = []
    for path in sorted(source_dir.glob("*.dcm")):
        link = target_dir / f"{source_dir.name[-6:]}_{path.name}"
        link.symlink_to(path)
        links.append(link)
    return links


def write_itk_volume(
    path: Path, array_zyx: np.ndarray, spacing=(0.7, 0.8, 2.0), origin=(-100.0, 50.0, -300.0)
):
    image = itk.image_from_array(np.ascontiguousarray(array_zyx))
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    itk.imwrite(image, str(path))


def write_dicomdir(path: Path) -> None:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.1.3.10"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.FileSetID = "LUNGCAD"
    ds.DirectoryRecordSequence = []
    ds.save_as(path, enforce_file_format=True)


def test_find_images_lidc_series_folder(lidc_0003: Path):
    entries = find_images(lidc_0003.parent.parent)  # the patient folder: the series is two levels down
    assert entries == [{"image": str(lidc_0003), "seriesuid": LIDC_0003_SERIESUID, "modality": "CT"}]
    # the folder reference is what plain MONAI reads too
    assert monai_only(Path(entries[0]["image"])).shape == (1, 512, 512, 11)


def test_find_images_petct_pair_gives_both_series(real_data: Path, caplog):
    with caplog.at_level(logging.INFO, logger="lungcad_transforms"):
        entries = find_images(real_data / PETCT)
    assert [(Path(e["image"]).name, e["modality"]) for e in entries] == [
        ("CT_dicom", "CT"),
        ("PT_CTAC_dicom", "PT"),
    ]
    assert entries[0]["seriesuid"] == "1.3.6.1.4.1.14519.5.2.1.4334.1501.322532693871316603730498233027"
    assert entries[1]["seriesuid"] == "1.3.6.1.4.1.14519.5.2.1.4334.1501.145590680866537222506847651399"
    # the Real World Value Mapping object beside the PET slices has no pixels: skipped, and said so
    assert any(
        "without pixel data" in r.getMessage() and "Real World Value Mapping" in r.getMessage()
        for r in caplog.records
    )


def test_find_images_whole_real_tree(real_data: Path):
    entries = find_images(real_data)
    by_uid = {e["seriesuid"]: e for e in entries}
    # one entry per series, whatever else lands in the data folder later
    assert len(entries) == len(by_uid)
    # the fixtures every test relies on: 2 LIDC slabs, the PET/CT pair, 2 ACRIN PET slices, the
    # header-stripped lungmask pair, 3 TotalSegmentator files, 12 sarcoma NIfTIs, the CPTAC chest CT
    assert by_uid[LIDC_0003_SERIESUID]["modality"] == "CT"
    assert sum("lungmask_tests" in str(e["image"]) for e in entries) == 1
    assert sum("totalsegmentator" in str(e["image"]) for e in entries) == 3
    assert sum("sts_ibsi_cropped" in str(e["image"]) for e in entries) == 12
    assert {e["modality"] for e in entries if "nsclc_radiogenomics" in str(e["image"])} == {"CT", "PT"}
    assert by_uid["C3N-00247_chest_ct_B70f"]["image"] == str(
        real_data / "chest_ct/cptac_c3n00247_ct/C3N-00247_chest_ct_B70f.nii.gz"
    )
    assert by_uid[LIDC_0002_SERIESUID]["modality"] == "CT"
    assert by_uid["example_ct_sm"] == {
        "image": str(real_data / "small/totalsegmentator/example_ct_sm.nii.gz"),
        "seriesuid": "example_ct_sm",
        "modality": "",
    }
    # same-named NIfTI files get their distinguishing folders as a prefix
    assert "STS_002_CT_nifti_image_image" in by_uid and "STS_003_PET_nifti_mask_mask" in by_uid
    # two single-slice PET series share a folder: one entry each, the file itself as reference
    acrin = [e for e in entries if "acrin" in str(e["image"])]
    assert [Path(e["image"]).name for e in acrin] == [
        "ACRIN-FLT-Breast_028_PT.dcm",
        "ACRIN-FLT-Breast_029_PT.dcm",
    ]
    assert {e["modality"] for e in acrin} == {"PT"}
    # deterministic: the same list twice, sorted by location
    assert find_images(real_data) == entries
    locations = [e["image"] if isinstance(e["image"], str) else e["image"][0] for e in entries]
    assert locations == sorted(locations)


def test_two_series_in_one_folder_are_two_entries(tmp_path: Path, lidc_0002: Path, lidc_0003: Path):
    shared = tmp_path / "shared"
    link_series(lidc_0002, shared)
    link_series(lidc_0003, shared)
    (shared / "notes.txt").write_text("not an image")
    found = {e["seriesuid"]: e for e in find_images(tmp_path)}
    assert sorted(found) == sorted([LIDC_0002_SERIESUID, LIDC_0003_SERIESUID])
    entries = [found[LIDC_0002_SERIESUID], found[LIDC_0003_SERIESUID]]
    assert [len(e["image"]) for e in entries] == [12, 11]
    # files are listed in slice order (inferior to superior along the slice normal)
    z = [
        float(pydicom.dcmread(f, stop_before_pixels=True).ImagePositionPatient[2])
        for f in entries[1]["image"]
    ]
    assert z == sorted(z) and z[0] == -204.0 and z[-1] == -179.0

    for entry, original in zip(entries, (lidc_0002, lidc_0003), strict=True):
        loaded = load_image(entry)
        reference = monai_only(original)
        assert loaded.shape == reference.shape
        np.testing.assert_allclose(loaded.affine.numpy(), reference.affine.numpy(), atol=1e-4)
        assert torch.equal(loaded.as_tensor(), reference.as_tensor())
        assert loaded.meta["seriesuid"] == entry["seriesuid"]
        # MONAI's own LoadImaged reads the list entry as one volume with the series reader
        data = LoadImaged(keys="image", reader=ITKDicomSeriesReader(), ensure_channel_first=True)(dict(entry))
        assert data["image"].shape[-1] == reference.shape[-1] and data["image"].shape[0] == 1

    # the shared folder itself is ambiguous for load_image
    with pytest.raises(InputError, match="mixes 2 DICOM series"):
        load_image(shared)
    assert len(dicom_series_files(shared, LIDC_0003_SERIESUID)) == 11


def test_find_images_volume_files_and_skips(tmp_path: Path, caplog):
    volume = np.zeros((6, 7, 8), np.int16)
    (tmp_path / "a").mkdir()
    write_itk_volume(tmp_path / "a" / "scan_one.mhd", volume)
    write_itk_volume(tmp_path / "a" / "scan_two.nrrd", volume)
    write_itk_volume(tmp_path / "b.nhdr", volume)
    write_itk_volume(tmp_path / "c.mha", volume)
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 4), np.float32), np.eye(4)), tmp_path / "d.nii")
    (tmp_path / "e").mkdir()
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 4), np.float32), np.eye(4)), tmp_path / "e" / "d.nii.gz")
    write_dicomdir(tmp_path / "DICOMDIR")
    (tmp_path / "readme.txt").write_text("hello")
    with caplog.at_level(logging.INFO, logger="lungcad_transforms"):
        entries = find_images(tmp_path)
    names = {e["seriesuid"]: Path(e["image"]).name for e in entries}
    assert names == {
        "scan_one": "scan_one.mhd",
        "scan_two": "scan_two.nrrd",
        "b": "b.nhdr",
        "c": "c.mha",
        f"{tmp_path.name}_d": "d.nii",
        "e_d": "d.nii.gz",
    }
    assert all(e["modality"] == "" for e in entries)
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "DICOMDIR" in messages and "readme.txt" in messages
    assert ".raw" not in messages  # data files of .mhd/.nhdr headers are not reported as strays
    for entry in entries:
        assert load_image(entry).ndim == 4


def test_find_images_refuses_empty_or_imageless_folders(tmp_path: Path, real_data: Path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="holds no DICOM series") as info:
        find_images(empty)
    assert info.value.path == str(empty)

    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "notes.txt").write_text("x")
    shutil.copyfile(real_data / "small/fair_thorax_petct_2d/PET-CT-CT.jpg", junk / "ct.jpg")
    rwv = real_data / PETCT / "PT_CTAC_dicom/1.2.276.0.7230010.3.1.4.2137803096.12072.1649168119.293.dcm"
    shutil.copyfile(rwv, junk / "rwv.dcm")
    write_dicomdir(junk / "DICOMDIR")
    with pytest.raises(InputError, match="holds no DICOM series"):
        find_images(junk)

    with pytest.raises(InputError, match="does not exist"):
        find_images(tmp_path / "missing")


def test_load_lidc_slabs(lidc_0003: Path, lidc_0002: Path):
    ct = load_image(str(lidc_0003))
    assert isinstance(ct, MetaTensor) and ct.dtype == torch.float32
    assert tuple(ct.shape) == (1, 512, 512, 11)
    assert nib.aff2axcodes(ct.affine.numpy()) == ("R", "A", "S")
    np.testing.assert_allclose(np.diag(ct.affine.numpy())[:3], [0.8203, 0.8203, 2.5], atol=1e-4)
    assert ct.meta["seriesuid"] == LIDC_0003_SERIESUID
    assert ct.meta["modality"] == "CT"
    assert ct.meta["filename_or_obj"] == str(lidc_0003)
    assert float(ct.min()) == -2048.0  # outside-field padding kept as stored, not clipped
    assert float(ct[0, 144, 161, 5]) == -22.0  # the LUNA16 nodule centre (see test_coords)
    assert torch.equal(ct.as_tensor(), monai_only(lidc_0003).as_tensor())

    ct2 = load_image({"image": str(lidc_0002), "seriesuid": LIDC_0002_SERIESUID, "modality": "CT"})
    assert tuple(ct2.shape) == (1, 512, 512, 12) and float(ct2.min()) == -3024.0
    np.testing.assert_allclose(np.diag(ct2.affine.numpy())[:3], [0.6816, 0.6816, 1.25], atol=1e-4)


def test_load_petct_pair(real_data: Path):
    ct_entry, pt_entry = find_images(real_data / PETCT)
    ct, pt = load_image(ct_entry), load_image(pt_entry)
    assert tuple(ct.shape) == (1, 512, 512, 10) and ct.meta["modality"] == "CT"
    assert tuple(pt.shape) == (1, 128, 128, 10) and pt.meta["modality"] == "PT"
    # same frame of reference and slab: the first and last slice centres share their z
    assert float(ct.affine[2, 3]) == float(pt.affine[2, 3]) == -860.5
    assert float(pt.affine[2, 2]) == pytest.approx(4.25)
    # PET in Bq/ml, each slice with its own RescaleSlope, in slice order
    files = dicom_series_files(pt_entry["image"])
    assert len(files) == 10
    for k in (0, 4, 9):
        ds = pydicom.dcmread(files[k])
        expected = ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        # RAS reorientation flips rows/columns of the LPS-stored slice: (row, col) -> (X, Y) = (col, row) flipped
        got = pt[0, :, :, k].numpy()[::-1, ::-1].T
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-3)


def test_single_dicom_slices_are_one_slice_volumes(real_data: Path):
    for name in ("0.dcm", "1.dcm"):
        path = real_data / "small/lungmask_tests" / name
        ct = load_image(path)
        assert tuple(ct.shape) == (1, 512, 512, 1)
        assert ct.meta["modality"] == ""  # headers stripped: no Modality
        assert float(ct.min()) < -1000  # HU, with -2048 padding
    both = load_image(real_data / "small/lungmask_tests")
    assert tuple(both.shape) == (1, 512, 512, 2)
    assert float(both.affine[2, 2]) == pytest.approx(1.0)  # slices at z 0 and 1


def test_load_nifti_fixtures(real_data: Path):
    ct = load_image(real_data / "small/totalsegmentator/example_ct_sm.nii.gz")
    assert tuple(ct.shape) == (1, 122, 101, 30)
    assert ct.meta["seriesuid"] == "example_ct_sm" and ct.meta["modality"] == ""
    np.testing.assert_allclose(np.diag(ct.affine.numpy())[:3], [3.0, 3.0, 3.0])
    pet = load_image(real_data / "mr_pet/sts_ibsi_cropped/STS_002/PET/nifti/image/image.nii.gz")
    assert tuple(pet.shape) == (1, 30, 27, 48)
    assert 15 < float(pet.max()) < 30  # already SUV in this collection


def test_truncated_dicom(tmp_path: Path, lidc_0003: Path):
    series = tmp_path / "series"
    links = link_series(lidc_0003, series)
    victim = links[5]
    data = victim.read_bytes()
    victim.unlink()
    victim.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="truncated DICOM file: pixel data has") as info:
        load_image(series)
    assert info.value.path == str(victim)
    with pytest.raises(InputError, match="truncated"):
        load_image(victim)


def test_two_d_images_are_refused(tmp_path: Path, real_data: Path):
    with pytest.raises(InputError, match="2-D image"):
        load_image(real_data / "small/fair_thorax_petct_2d/PET-CT-CT.jpg")
    flat = tmp_path / "flat.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((10, 12), np.float32), np.eye(4)), flat)
    with pytest.raises(InputError, match=r"2-D image \(10 x 12\)"):
        load_image(flat)
    four_d = tmp_path / "dynamic.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((6, 6, 4, 3), np.float32), np.eye(4)), four_d)
    with pytest.raises(InputError, match="one 3-D volume"):
        load_image(four_d)


def test_nan_nifti(tmp_path: Path):
    volume = np.full((8, 8, 4), -1000.0, np.float32)
    volume[2, 3, 1] = np.nan
    volume[4, 4, 2] = np.inf
    path = tmp_path / "nan.nii.gz"
    nib.save(nib.Nifti1Image(volume, np.diag([0.7, 0.7, 2.0, 1.0])), path)
    with pytest.raises(InputError, match="contains 2 NaN or infinite") as info:
        load_image(path)
    assert info.value.path == str(path)


def test_missing_or_zero_spacing(tmp_path: Path, real_data: Path):
    zero = tmp_path / "zero.nii.gz"
    image = nib.Nifti1Image(np.zeros((8, 8, 4), np.int16), np.eye(4))
    image.header["pixdim"][1:4] = [0.0, 0.7, 2.0]
    nib.save(image, zero)
    with pytest.raises(InputError, match="invalid voxel spacing in the NIfTI header"):
        load_image(zero)

    no_spacing = copy_dicom(
        real_data / "small/lungmask_tests/0.dcm", tmp_path / "nospacing.dcm", PixelSpacing=None
    )
    with pytest.raises(InputError, match="missing or invalid PixelSpacing"):
        load_image(no_spacing)

    mhd = tmp_path / "vol.mhd"
    write_itk_volume(mhd, np.zeros((4, 5, 6), np.int16))
    lines = [line for line in mhd.read_text().splitlines() if not line.startswith("ElementSpacing")]
    mhd.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match="no ElementSpacing"):
        load_image(mhd)

    nrrd = tmp_path / "vol.nhdr"
    write_itk_volume(nrrd, np.zeros((4, 5, 6), np.int16))
    text = nrrd.read_text()
    assert "space directions" in text
    nrrd.write_text(re.sub(r"space directions: \([^)]*\)", "space directions: (0,0,0)", text))
    with pytest.raises(InputError, match="invalid voxel spacing: space directions"):
        load_image(nrrd)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"PixelSpacing": [0.5, 0.5]}, "mixes pixel spacings"),
        ({"ImageOrientationPatient": [1, 0, 0, 0, 0.9, 0.43589]}, "mixes slice orientations"),
        ({"Rows": 256}, "mixes slice sizes"),
        ({"ImagePositionPatient": None}, "lacks ImageOrientationPatient/ImagePositionPatient"),
        ({"SeriesInstanceUID": "1.2.3.4"}, "mixes 2 DICOM series"),
    ],
    ids=["spacing", "orientation", "size", "no_position", "other_series"],
)
def test_inconsistent_series(tmp_path: Path, lidc_0003: Path, change: dict, message: str):
    files = sorted(lidc_0003.glob("*.dcm"))[:4]
    series = tmp_path / "series"
    for path in files[:3]:
        (series / path.name).parent.mkdir(parents=True, exist_ok=True)
        (series / path.name).symlink_to(path)
    copy_dicom(files[3], series / files[3].name, **change)
    with pytest.raises(InputError, match=message):
        load_image(series)


def test_missing_and_duplicate_slices(tmp_path: Path, lidc_0003: Path):
    files = sorted(lidc_0003.glob("*.dcm"))
    gap = tmp_path / "gap"
    link_series(lidc_0003, gap)
    sorted(gap.iterdir())[4].unlink()
    with pytest.raises(InputError, match="uneven slice spacing"):
        load_image(gap)
    duplicate = tmp_path / "duplicate"
    link_series(lidc_0003, duplicate)
    copy_dicom(files[2], duplicate / "copy.dcm", SOPInstanceUID=generate_uid())
    with pytest.raises(InputError, match="several slices at the same position"):
        load_image(duplicate)


def test_unreadable_and_missing_paths(tmp_path: Path):
    with pytest.raises(InputError, match="does not exist"):
        load_image(tmp_path / "nope.nii.gz")
    garbage = tmp_path / "garbage.nii.gz"
    garbage.write_bytes(b"this is not a volume" * 10)
    with pytest.raises(InputError, match="unreadable NIfTI header"):
        load_image(garbage)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(InputError, match="cannot be read as an image"):
        load_image(text)
    with pytest.raises(InputError, match="no DICOM image files"):
        load_image(tmp_path)
    with pytest.raises(InputError, match="no 'image' key"):
        load_image({"seriesuid": "x"})
