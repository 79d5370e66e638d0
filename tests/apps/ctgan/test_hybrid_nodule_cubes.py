"""Injector cubes of synthetic nodules inserted into a real-like background (the hybrid data of apps.hybrid)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from lungcad_transforms.apps.ctgan import ctgan_cube_items, ensure_hybrid_nodule_cubes
from lungcad_transforms.apps.phantoms.ct import make_ct_phantom
from lungcad_transforms.data.image_writer import write_nifti


def test_hybrid_nodule_cubes_hold_a_nodule_of_the_listed_diameter(tmp_path: Path):
    # a nodule-free phantom chest stands in for a real background (the real CTs are the default)
    ct = make_ct_phantom((128, 128, 96), spacing=(1.0, 1.0, 1.25), seed=5, n_nodules=0)
    backgrounds = tmp_path / "backgrounds"
    write_nifti(ct.hu, ct.spacing, ct.origin_lps, backgrounds / "chest.nii.gz")
    folder = Path(
        ensure_hybrid_nodule_cubes(
            tmp_path / "hybrid_nodules", cases=2, nodules_per_case=(2, 3), window_mm=(96.0, 96.0, 80.0),
            seed=1, backgrounds=[backgrounds], lesions=[],
        )
    )  # fmt: skip
    report = json.loads((folder / "hybrid_nodules.json").read_text())
    with np.load(folder / "cubes_training.npz") as z:
        cubes, diameters, removal = z["injector"], z["injector_diameter"], z["remover"]
    assert report["cubes"] == len(cubes) >= 2 and removal.shape[0] == 0
    assert cubes.shape[1:] == (32, 32, 32) and len(diameters) == len(cubes)
    assert np.all((diameters >= 4.0) & (diameters <= 12.0))
    centre = cubes[:, 14:18, 14:18, 14:18].reshape(len(cubes), -1).mean(axis=1)
    lung = np.median(cubes[:, 8:24, 8:24, 8:24].reshape(len(cubes), -1), axis=1)
    assert np.all(centre > lung + 300)  # a dense nodule at the centre of aerated lung
    assert not (folder / "hybrid").exists()  # the cases themselves are not kept
    items = ctgan_cube_items(folder, "injector")
    assert len(items) == len(cubes) and all(item["image"][2].sum() > 0 for item in items)  # target spheres
    stamp = (folder / "cubes_training.npz").stat().st_mtime_ns
    ensure_hybrid_nodule_cubes(folder, cases=2, seed=1, backgrounds=[backgrounds], lesions=[])
    assert (folder / "cubes_training.npz").stat().st_mtime_ns == stamp  # made once


def test_no_usable_background_gives_an_empty_file_not_an_error(tmp_path: Path):
    empty = tmp_path / "nothing"
    empty.mkdir()
    folder = Path(ensure_hybrid_nodule_cubes(tmp_path / "cubes", backgrounds=[empty], lesions=[]))
    with np.load(folder / "cubes_training.npz") as z:
        assert z["injector"].shape == (0, 32, 32, 32)
    assert ctgan_cube_items(folder, "injector", allow_empty=True) == []
