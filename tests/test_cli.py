"""The `lungcad` command line as a user runs it: real scans in, files out, clear errors."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np

from lungcad_transforms.cli import main
from lungcad_transforms.data.coords import world_to_voxel
from lungcad_transforms.data.tables import read_annotations


def _mask(path):
    img = nib.load(str(path))
    return np.asarray(img.dataobj) > 0, img.affine


def test_lungmask_real_lidc_slab_keeps_both_lungs_and_the_nodule(
    lidc_0003, luna16_annotations, tmp_path, capsys
):
    out = tmp_path / "lungs.nii.gz"
    assert main(["lungmask", str(lidc_0003), str(out)]) == 0
    assert "lung mask:" in capsys.readouterr().out
    mask, affine = _mask(out)
    assert mask.shape == (512, 512, 11)
    # both lungs: mask voxels on either side of the mid-sagittal plane (RAS x < 0 and x > 0)
    ii, jj, kk = np.nonzero(mask)
    x_ras = affine[0, 0] * ii + affine[0, 3]
    left, right = np.count_nonzero(x_ras > 0), np.count_nonzero(x_ras < 0)
    assert min(left, right) > 0.3 * max(left, right)
    voxel_ml = abs(np.linalg.det(affine[:3, :3])) / 1000
    assert 150 < mask.sum() * voxel_ml < 1500  # 11 slices x 2.5 mm of adult lungs
    # the LUNA16 nodule inside the slab lies inside the (dilated) mask, in world space
    rows = [
        r
        for r in read_annotations(luna16_annotations)
        if r["seriesuid"] == "1.3.6.1.4.1.14519.5.2.1.6279.6001.170706757615202213033480003264"
    ]
    inside = [r for r in rows if -194.5 < r["coordZ"] < -175]
    assert len(inside) == 1
    idx = np.floor(world_to_voxel([[inside[0][c] for c in ("coordX", "coordY", "coordZ")]], affine)[0] + 0.5)
    assert mask[tuple(idx.astype(int))]


def test_lungmask_real_single_slices(real_data, tmp_path):
    for name in ("0.dcm", "1.dcm"):
        out = tmp_path / f"{name}.nii.gz"
        assert (
            main(["lungmask", str(real_data / "small/lungmask_tests" / name), str(out), "--dilation-mm", "0"])
            == 0
        )
        mask, _ = _mask(out)
        assert mask.shape == (512, 512, 1)
        frac = mask.mean()
        assert 0.05 < frac < 0.5, f"{name}: lung fraction {frac:.3f}"


def test_lungmask_bad_input_names_file_and_leaves_no_output(real_data, tmp_path, capsys):
    bad = tmp_path / "scans"
    bad.mkdir()
    src = real_data / "small/lungmask_tests/0.dcm"
    data = src.read_bytes()
    (bad / "cut.dcm").write_bytes(data[: len(data) // 2])
    out = tmp_path / "out" / "mask.nii.gz"
    assert main(["lungmask", str(bad / "cut.dcm"), str(out)]) == 2
    err = capsys.readouterr().err
    assert "cut.dcm" in err
    assert not out.exists() and not (out.parent.exists() and any(out.parent.iterdir()))
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["lungmask", str(empty), str(out)]) == 2
    assert "empty" in capsys.readouterr().err
    assert not out.exists()


def test_lungmask_refuses_mr(real_data, tmp_path, capsys):
    out = tmp_path / "mask.nii.gz"
    assert main(["lungmask", str(real_data / "small/totalsegmentator/example_mr_sm.nii.gz"), str(out)]) == 2
    assert "example_mr_sm" in capsys.readouterr().err
    assert not out.exists()


def test_phantom_command_writes_dataset(tmp_path, capsys):
    assert (
        main(
            [
                "phantom",
                "--out",
                str(tmp_path / "ph"),
                "--cases",
                "2",
                "--shape",
                "64",
                "64",
                "48",
                "--format",
                "nifti",
                "mhd",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    datalist_path = out.strip().splitlines()[-1].split("datalist: ")[1]
    datalist = json.loads(open(datalist_path).read())
    entries = [e for v in datalist.values() if isinstance(v, list) for e in v]
    assert len(entries) == 2
    assert (tmp_path / "ph" / "annotations.csv").is_file()
