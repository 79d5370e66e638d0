"""Hybrid training cases as axial slabs (``window_mm`` with ``None`` in-plane): the bundles' LungMask finds their lungs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from lungcad_transforms.apps.hybrid.dataset import write_hybrid_dataset
from lungcad_transforms.data import load_image
from lungcad_transforms.transforms import LungMask

CPTAC = "chest_ct/cptac_c3n00247_ct"


def test_slab_windows_keep_the_whole_slice_and_lungmask_finds_the_lungs(real_data: Path, tmp_path: Path):
    out = tmp_path / "ds"
    write_hybrid_dataset(
        [real_data / CPTAC], out, cases_per_background=2, window_mm=(None, None, 30.0),
        test_backgrounds=[], val_fraction=0.0, hard_negatives_per_case=0, seed=3,
    )  # fmt: skip
    datalist = json.loads((out / "datalist.json").read_text())
    assert len(datalist["training"]) == 2
    assert json.loads((out / "hybrid_dataset.json").read_text())["settings"]["window_mm"] == [
        None,
        None,
        30.0,
    ]
    for entry in datalist["training"]:
        image = load_image(out / entry["image"])
        assert tuple(image.shape[1:3]) == (512, 512)  # the whole CPTAC slice (0.56 mm pixels)
        assert image.shape[3] == 10  # 30 mm of 3 mm slices
        lungs = LungMask(dilation_mm=0.0)(image)
        voxel_ml = float(np.prod(np.asarray(image.pixdim)[:3])) / 1000.0
        # both lungs in a 30 mm slab of an adult chest: several hundred ml, far from "no lungs found"
        assert float(lungs.sum()) * voxel_ml > 300.0
