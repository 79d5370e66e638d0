"""Prepared datasets: sphere labels, the atomic folder with labels on each scan's own grid, the preparer CLI."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from lungcad_transforms.apps.prepared.dataset import (
    PreparedCase,
    add_prepare_arguments,
    run_prepare,
    sphere_mask,
    write_prepared_dataset,
)
from lungcad_transforms.data.coords import world_to_voxel
from lungcad_transforms.data.image_reader import load_image
from lungcad_transforms.data.image_writer import write_nifti
from lungcad_transforms.data.tables import read_annotations
from lungcad_transforms.errors import InputError


def test_sphere_mask_on_anisotropic_grid():
    affine = np.diag([-0.7, -0.7, 2.5, 1.0])
    affine[:3, 3] = [100.0, 80.0, -200.0]
    row = {"coordX": -80.0, "coordY": -60.0, "coordZ": -180.0, "diameter_mm": 12.0}
    mask = sphere_mask((64, 64, 20), affine, [row])
    volume = mask.sum() * 0.7 * 0.7 * 2.5
    assert volume == pytest.approx(4 / 3 * np.pi * 6.0**3, rel=0.15)
    centre = np.argwhere(mask).mean(axis=0)
    assert np.allclose(
        centre, world_to_voxel([row["coordX"], row["coordY"], row["coordZ"]], affine)[0], atol=0.5
    )
    assert sphere_mask((64, 64, 20), affine, [{**row, "coordZ": 500.0}]).sum() == 0


def _lps_ordered_scan(tmp_path: Path, name: str) -> Path:
    # write_nifti keeps the LPS index order: the loaded (RAS) grid is flipped along x and y
    hu = np.full((40, 32, 12), -800, np.int16)
    return write_nifti(hu, (0.8, 0.9, 2.5), (-20.0, -30.0, -100.0), tmp_path / name)


def test_write_prepared_dataset_labels_on_the_scan_files_grid(tmp_path: Path):
    cases, rows = [], []
    for n in range(3):
        scan = load_image(str(_lps_ordered_scan(tmp_path, f"case{n}.nii.gz")))
        row = {
            "seriesuid": f"case{n}",
            "coordX": -5.0 + n,
            "coordY": -18.0,
            "coordZ": -85.0,
            "diameter_mm": 6.0,
        }
        labels = sphere_mask(scan.shape[1:], scan.affine, [row], label_each=True)
        cases.append(
            PreparedCase({"image": scan.meta["filename_or_obj"], "seriesuid": f"case{n}"}, labels, scan.meta)
        )
        rows.append(row)
    datalist_path = write_prepared_dataset(
        tmp_path / "prepared", cases, rows, val_fraction=0.34, test_fraction=0.0, seed=3, source="unit test"
    )
    datalist = json.loads(datalist_path.read_text())
    assert datalist["source"] == "unit test"
    assert len(datalist["training"]) == 2 and len(datalist["validation"]) == 1 and datalist["test"] == []
    for entry in datalist["training"] + datalist["validation"]:
        label = nib.load(tmp_path / "prepared" / entry["label"])
        source = nib.load(entry["image"])
        # the label overlays the scan file voxel by voxel: same shape, same affine, same axis order
        assert label.shape == source.shape and label.get_data_dtype() == np.uint8
        np.testing.assert_allclose(label.affine, source.affine, atol=1e-5)
        row = next(r for r in rows if r["seriesuid"] == entry["seriesuid"])
        centre = world_to_voxel([row["coordX"], row["coordY"], row["coordZ"]], label.affine)[0]
        np.testing.assert_allclose(np.argwhere(np.asarray(label.dataobj) == 1).mean(axis=0), centre, atol=0.6)
    assert [r["seriesuid"] for r in read_annotations(tmp_path / "prepared" / "annotations.csv")] == [
        "case0",
        "case1",
        "case2",
    ]


def test_write_prepared_dataset_failure_keeps_the_old_folder(tmp_path: Path):
    out = tmp_path / "prepared"
    out.mkdir()
    (out / "datalist.json").write_text("{}")
    scan = load_image(str(_lps_ordered_scan(tmp_path, "case.nii.gz")))
    case = PreparedCase(
        {"image": "case.nii.gz", "seriesuid": "case"}, np.zeros(scan.shape[1:], np.uint8), scan.meta
    )
    bad_row = {"seriesuid": "case", "coordX": float("nan"), "coordY": 0.0, "coordZ": 0.0, "diameter_mm": 6.0}
    # the label is written first, the malformed annotation row fails last: nothing of the run may remain
    with pytest.raises(InputError, match="annotations.csv"):
        write_prepared_dataset(out, [case], [bad_row])
    assert sorted(p.name for p in out.iterdir()) == ["datalist.json"]
    assert (out / "datalist.json").read_text() == "{}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["case.nii.gz", "prepared"]  # no staging folder left


@pytest.mark.parametrize(("val", "test"), [(-0.1, 0.0), (0.5, 0.5)])
def test_write_prepared_dataset_refuses_impossible_split(tmp_path: Path, val: float, test: float):
    with pytest.raises(ValueError, match="add up to less than 1"):
        write_prepared_dataset(tmp_path / "out", [], [], val_fraction=val, test_fraction=test)
    assert not (tmp_path / "out").exists()


def test_run_prepare_forwards_the_split_and_reports_bad_input(tmp_path: Path, capsys):
    parser = argparse.ArgumentParser()
    add_prepare_arguments(parser)
    args = parser.parse_args(["--out", str(tmp_path / "out"), "--val_fraction", "0.2", "--seed", "7"])
    seen = {}

    def prepare(root, out, *, val_fraction, test_fraction, seed):
        seen.update(root=root, out=out, val_fraction=val_fraction, test_fraction=test_fraction, seed=seed)
        return Path(out) / "datalist.json"

    assert run_prepare("prepare_test", prepare, args, "/data/LIDC-IDRI") == 0
    assert seen == {"root": "/data/LIDC-IDRI", "out": str(tmp_path / "out"), "val_fraction": 0.2,
                    "test_fraction": 0.15, "seed": 7}  # fmt: skip
    assert "wrote" in capsys.readouterr().out

    def refuse(root, out, **split):
        raise InputError(root, "holds no CT series")

    assert run_prepare("prepare_test", refuse, args, "/no/such/folder") == 2
    err = capsys.readouterr().err
    assert err.startswith("prepare_test: error: ") and "/no/such/folder" in err and "Traceback" not in err
