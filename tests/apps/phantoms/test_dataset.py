"""The phantom dataset on disk: files, datalist, annotations."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from image_checks import assert_nodules_on_labels, load, load_ras, tree_digest
from monai.data import load_decathlon_datalist

from lungcad_transforms.apps.phantoms.ct import make_ct_phantom
from lungcad_transforms.apps.phantoms.dataset import write_phantom_dataset
from lungcad_transforms.apps.phantoms.results import NODULE_KINDS
from lungcad_transforms.errors import InputError


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
