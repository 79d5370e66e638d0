"""check_ct: one CT check for ValidateCT and LungMask; an unknown modality is decided by the values.

Issue 9 point 1: a LUNA16 ``.mhd`` has no ``Modality`` line, ITK reports ``MET_MOD_UNKNOWN``, and every
path refused the scan as "not CT". The same fault class: NRRD and NIfTI carry no modality at all, and
DICOM can lose its Modality tag (the real header-stripped slices).
"""

from __future__ import annotations

import importlib.util
import shutil
import zlib
from pathlib import Path

import itk
import nibabel as nib
import numpy as np
import pydicom
import pytest
import torch
from monai.data import MetaTensor

from lungcad_transforms.cli import main
from lungcad_transforms.data.image_reader import load_image
from lungcad_transforms.data.tables import write_annotations_csv
from lungcad_transforms.errors import InputError
from lungcad_transforms.transforms import LungMask, LungMaskd, ValidateCT, ValidateCTd
from lungcad_transforms.transforms.io.functional import check_ct, declared_modality

REPO_ROOT = Path(__file__).resolve().parents[3]
SERIESUID = "1.3.6.1.4.1.14519.5.2.1.6279.6001.105756658031515062000744821260"
SPACING = (0.7617189884185791, 0.7617189884185791, 2.5)
LUNG_VOXELS = 2 * 12 * 24 * 14  # two lungs of 12 slices x 24 rows x 14 columns

# a LUNA16 header, line for line (only DimSize and ElementDataFile are this test's)
LUNA16_HEADER = """ObjectType = Image
NDims = 3
BinaryData = True
BinaryDataByteOrderMSB = False
CompressedData = False
TransformMatrix = 1 0 0 0 1 0 0 0 1
Offset = -195 -195 -378
CenterOfRotation = 0 0 0
AnatomicalOrientation = RAI
ElementSpacing = 0.7617189884185791 0.7617189884185791 2.5
DimSize = 48 40 12
ElementType = MET_SHORT
ElementDataFile = {data_file}
"""


def _chest() -> np.ndarray:
    """A CT-like int16 body, (Z, Y, X) as MetaImage stores it: air, soft tissue, two lungs, a rib."""
    hu = np.full((12, 40, 48), -1000, np.int16)
    hu[:, 4:36, 4:44] = 40
    hu[:, 8:32, 8:22] = -850
    hu[:, 8:32, 26:40] = -850
    hu[:, 34:36, 10:38] = 1200  # bone
    return hu


def _luna16_mhd(folder: Path, compressed: bool = False, newline: str = "\n", extra: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    body = _chest().tobytes()
    header = LUNA16_HEADER.format(data_file=f"{SERIESUID}.{'zraw' if compressed else 'raw'}")
    if compressed:
        body = zlib.compress(body)
        header = header.replace(
            "CompressedData = False\n", f"CompressedData = True\nCompressedDataSize = {len(body)}\n"
        )
    if extra:
        header = header.replace("ElementSpacing", f"{extra}\nElementSpacing")
    (folder / f"{SERIESUID}.{'zraw' if compressed else 'raw'}").write_bytes(body)
    path = folder / f"{SERIESUID}.mhd"
    path.write_bytes(header.replace("\n", newline).encode("ascii"))
    return path


def _lung_voxels(mask) -> int:
    return int(torch.as_tensor(np.asarray(mask)).sum())


@pytest.mark.parametrize(
    ("compressed", "newline"), [(False, "\n"), (True, "\n"), (False, "\r\n")], ids=["raw", "zraw", "crlf"]
)
def test_luna16_metaimage_is_a_ct(tmp_path: Path, compressed: bool, newline: str):
    path = _luna16_mhd(tmp_path / "subset0", compressed, newline)
    ct = load_image(path)
    assert ct.meta["Modality"] == "MET_MOD_UNKNOWN" and declared_modality(ct.meta) is None
    # MetaImage voxels are in LPS: RAS flips x and y
    np.testing.assert_array_equal(ct[0].numpy(), _chest().transpose(2, 1, 0)[::-1, ::-1])
    assert ValidateCTd(keys="image")({"image": ct})["image"] is ct
    assert check_ct(ct) == -1000.0
    lungs = LungMaskd(keys="image", new_key_prefix="lung_", dilation_mm=0)({"image": ct})["lung_image"]
    assert _lung_voxels(lungs) == LUNG_VOXELS

    out = tmp_path / "lungs.nii.gz"
    assert main(["lungmask", str(path), str(out), "--dilation-mm", "0"]) == 0
    assert int(np.asarray(nib.load(out).dataobj).sum()) == LUNG_VOXELS


def test_prepare_luna16_script_takes_luna16_metaimage(tmp_path: Path):
    path = _luna16_mhd(tmp_path / "luna" / "subset0", compressed=True)
    nodule = {
        "seriesuid": SERIESUID,
        "coordX": -180.0,
        "coordY": -180.0,
        "coordZ": -365.0,
        "diameter_mm": 6.0,
    }
    write_annotations_csv([nodule], tmp_path / "annotations.csv")
    spec = importlib.util.spec_from_file_location("prepare_luna16", REPO_ROOT / "scripts/prepare_luna16.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    args = ["--luna16_root", str(tmp_path / "luna"), "--annotations", str(tmp_path / "annotations.csv")]
    args += ["--out", str(tmp_path / "prepared"), "--val_fraction", "0", "--test_fraction", "0"]
    assert script.main(args) == 0
    label = nib.load(tmp_path / "prepared" / "labels" / f"{SERIESUID}.nii.gz")
    assert label.shape == (48, 40, 12) and int(np.asarray(label.dataobj).max()) == 1
    assert path.is_file()


def test_metaimage_declared_mr_is_refused(tmp_path: Path, capsys):
    path = _luna16_mhd(tmp_path, extra="Modality = MET_MOD_MR")
    mr = load_image(path)  # CT-like values: only the header tells
    with pytest.raises(InputError, match="modality is 'MR', not CT") as info:
        ValidateCT()(mr)
    assert info.value.path == str(path)
    with pytest.raises(InputError, match="'MR'"):
        LungMask()(mr)
    assert main(["lungmask", str(path), str(tmp_path / "m.nii.gz")]) == 2
    assert "not CT" in capsys.readouterr().err and not (tmp_path / "m.nii.gz").exists()
    ct = load_image(_luna16_mhd(tmp_path / "ct", extra="Modality = MET_MOD_CT"))
    assert declared_modality(ct.meta) == "CT" and ValidateCT()(ct) is ct


def test_nrrd_without_modality_is_decided_by_values(tmp_path: Path):
    image = itk.image_from_array(np.ascontiguousarray(_chest()))
    image.SetSpacing(SPACING)
    itk.imwrite(image, str(tmp_path / "ct.nrrd"))
    ct = load_image(tmp_path / "ct.nrrd")
    assert ValidateCT()(ct) is ct and _lung_voxels(LungMask(dilation_mm=0)(ct)) == LUNG_VOXELS
    mr_like = itk.image_from_array(np.ascontiguousarray(_chest() + 1000))  # 0 .. 2200: no air
    itk.imwrite(mr_like, str(tmp_path / "mr.nrrd"))
    with pytest.raises(InputError, match="not CT Hounsfield units"):
        ValidateCT()(load_image(tmp_path / "mr.nrrd"))


def test_nifti_without_intent_is_decided_by_values(tmp_path: Path):
    img = nib.Nifti1Image(_chest().transpose(2, 1, 0), np.diag([*SPACING, 1.0]))
    assert img.header["intent_code"] == 0 and img.header.get_intent()[0] == "none"
    nib.save(img, tmp_path / "ct.nii.gz")
    ct = load_image(tmp_path / "ct.nii.gz")
    assert ValidateCT()(ct) is ct and _lung_voxels(LungMask(dilation_mm=0)(ct)) == LUNG_VOXELS


def test_dicom_without_modality_accepted_declared_mr_refused(real_data: Path, tmp_path: Path):
    folder = real_data / "small/lungmask_tests"
    assert all("Modality" not in pydicom.dcmread(p, stop_before_pixels=True) for p in folder.glob("*.dcm"))
    ct = load_image(folder)
    assert ValidateCT()(ct) is ct and _lung_voxels(LungMask()(ct)) > 0

    shutil.copytree(folder, tmp_path / "mr")
    for file in (tmp_path / "mr").glob("*.dcm"):
        ds = pydicom.dcmread(file)
        ds.Modality = "MR"
        ds.save_as(file)
    mr = load_image(tmp_path / "mr")
    with pytest.raises(InputError, match="modality is 'MR', not CT"):
        ValidateCT()(mr)
    with pytest.raises(InputError, match="'MR'"):
        LungMask()(mr)


def test_declared_modality_and_value_rules():
    assert declared_modality({}) is None
    for unknown in ("", " ", "MET_MOD_UNKNOWN", "OT", "MET_MOD_OTHER", None):
        assert declared_modality({"modality": "", "Modality": unknown}) is None
    assert declared_modality({"0008|0060": "CT "}) == "CT"
    assert declared_modality({"modality": ["PT", "PT"]}) == "PT"  # collated metadata
    assert declared_modality({"modality": "CT", "Modality": "MET_MOD_MR"}) == "MR"  # the non-CT one wins

    hu = torch.tensor([[-1000.0, 40.0, 1500.0]])
    assert check_ct(MetaTensor(hu, meta={"Modality": "MET_MOD_UNKNOWN"})) == -1000.0
    assert check_ct(hu.numpy().astype(np.int16)) == -1000.0
    with pytest.raises(InputError, match="not CT Hounsfield units"):
        check_ct(MetaTensor(hu + 900.0, meta={"Modality": "MET_MOD_UNKNOWN"}))  # no air
    counts = MetaTensor(torch.tensor([-1000.0, 40.0, 65535.0]), meta={"filename_or_obj": "x.nrrd"})
    with pytest.raises(InputError, match="maximum 65535") as info:
        check_ct(counts)  # no modality and beyond 16-bit HU
    assert info.value.path == "x.nrrd"
    counts.meta["modality"] = "CT"
    assert check_ct(counts) == -1000.0  # a declared CT is trusted on its range
    with pytest.raises(InputError, match="2 NaN or infinite"):
        check_ct(torch.tensor([-1000.0, float("nan"), float("inf")]))
    with pytest.raises(InputError, match="dtype"):
        check_ct(np.zeros(4, bool))
    with pytest.raises(InputError, match="empty"):
        check_ct(np.zeros((1, 0, 4, 4), np.int16))
