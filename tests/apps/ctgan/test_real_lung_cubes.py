"""Remover cubes cut from the real chest CTs: lung, clear of the known lesions, none from slabs thinner than a cube."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lungcad_transforms.apps.ctgan import ctgan_cube_items, ensure_real_lung_cubes
from lungcad_transforms.apps.ctgan.cubes import MASK_SIZE
from lungcad_transforms.apps.hybrid import KNOWN_REAL_LESIONS


@pytest.mark.slow  # lung masks of the whole CPTAC chest CT and both LIDC slabs: 4 min under load
def test_real_lung_cubes_are_lung_clear_of_known_lesions(real_data: Path, tmp_path: Path):
    folder = Path(ensure_real_lung_cubes(tmp_path / "real_lung", per_scan=6, seed=1))
    report = json.loads((folder / "real_lung.json").read_text())
    by_uid = {s["seriesuid"]: s["cubes"] for s in report["scans"]}
    assert by_uid["C3N-00247_chest_ct_B70f"] == 6  # the whole chest CT
    assert len(by_uid) == 3 and sum(by_uid.values()) == 6  # the two LIDC slabs (<= 27.5 mm) give none
    with np.load(folder / "cubes_training.npz") as z:
        cubes, centres = z["remover"], z["remover_centre_lps"]
    assert cubes.shape == (6, 32, 32, 32) and centres.shape == (6, 3)
    box = cubes[:, 8:24, 8:24, 8:24].astype(float)
    assert np.all(np.median(box.reshape(6, -1), axis=1) < -600)  # mostly aerated lung in the in-paint box
    lesion = next(r for r in KNOWN_REAL_LESIONS if r["seriesuid"] == "C3N-00247_chest_ct_B70f")
    at = np.array([lesion["coordX"], lesion["coordY"], lesion["coordZ"]])
    assert np.all(np.linalg.norm(centres - at, axis=1) > lesion["diameter_mm"] + 8 + MASK_SIZE / 2)
    items = ctgan_cube_items(folder, "remover")
    assert len(items) == 6 and items[0]["image"][2].sum() == 0  # no target sphere: removal inputs
    assert ctgan_cube_items(folder, "injector", allow_empty=True) == []
    # made once: a second call keeps the file
    stamp = (folder / "cubes_training.npz").stat().st_mtime_ns
    ensure_real_lung_cubes(folder, per_scan=6, seed=1)
    assert (folder / "cubes_training.npz").stat().st_mtime_ns == stamp
