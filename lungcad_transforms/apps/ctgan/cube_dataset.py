"""CT-GAN training cubes: nodule-centred cubes (injector) and nodule-free lung cubes (remover)."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lungcad_transforms.apps.ctgan.cubes import CUBE_SIZE, MASK_SIZE, cut_cube, generator_input, normalise_hu
from lungcad_transforms.apps.ctgan.real_lung_cubes import clear_lung_points
from lungcad_transforms.data.coords import affine_lps, lps_to_ras_affine
from lungcad_transforms.errors import InputError
from lungcad_transforms.utils.atomic import atomic_dir, atomic_file

logger = logging.getLogger(__name__)

__all__ = ["TASKS", "ensure_ctgan_dataset", "ctgan_cube_items"]


TASKS = ("injector", "remover")


_COMPLETE = "datalist.json"


def _remover_centres(ct: Any, rng: np.random.Generator, n: int, affine: np.ndarray) -> list[np.ndarray]:
    """World centres (LPS) of lung voxels at least 8 mm clear of every nodule's surface."""
    blocked = [(d.center_lps, d.diameter_mm / 2) for d in ct.nodules]
    return clear_lung_points(ct.lungs & (ct.nodule_labels == 0), affine, blocked, rng, n)


def ensure_ctgan_dataset(
    dataset_dir: str | os.PathLike,
    n_train: int = 16,
    n_val: int = 4,
    shape: Sequence[int] = (128, 128, 96),
    spacing: Sequence[float] | None = (1.0, 1.0, 1.25),
    seed: int = 3030,
    remover_per_scan: int = 8,
    nodule_diameter_mm: Sequence[float] = (4.0, 12.0),
) -> str:
    """Create the embedded CT-GAN dataset in ``dataset_dir`` unless it is there; return the folder.

    Phantom CTs (``make_ct_phantom(seed=seed + i)``) are written under ``images/<split>/`` with
    ``annotations.csv``; from each, the 1 mm cubes of :func:`~lungcad_transforms.apps.ctgan.cubes.cut_cube`
    at every nodule (``injector``) and at ``remover_per_scan`` nodule-free lung points (``remover``) go to
    ``cubes_<split>.npz`` (int16 HU, with the nodule diameters). Cubes that would cross a scan border are left out.
    """
    from lungcad_transforms.apps.phantoms.ct import make_ct_phantom
    from lungcad_transforms.data.image_writer import write_nifti
    from lungcad_transforms.data.tables import write_annotations_csv
    from lungcad_transforms.utils.locks import dataset_lock

    root = Path(dataset_dir)
    settings = {
        "n_train": int(n_train), "n_val": int(n_val), "shape": [int(s) for s in shape],
        "spacing": None if spacing is None else [float(s) for s in spacing], "seed": int(seed),
        "remover_per_scan": int(remover_per_scan), "nodule_diameter_mm": [float(d) for d in nodule_diameter_mm],
    }  # fmt: skip
    with dataset_lock(root):
        if (root / _COMPLETE).is_file():
            return str(root)
        logger.info("creating the embedded CT-GAN phantom dataset in %s", root)
        with atomic_dir(root) as tmp:
            splits: dict[str, list[dict[str, str]]] = {"training": [], "validation": []}
            nodules: list[dict[str, Any]] = []
            for split_index, (split, count) in enumerate((("training", n_train), ("validation", n_val))):
                (tmp / "images" / split).mkdir(parents=True)
                cubes: dict[str, list] = {"injector": [], "injector_diameter": [], "remover": []}
                for j in range(count):
                    case = seed + split_index * 1000 + j
                    ct = make_ct_phantom(
                        tuple(shape), spacing=spacing, seed=case, nodule_diameter_mm=tuple(nodule_diameter_mm)
                    )
                    affine = lps_to_ras_affine(affine_lps(ct.spacing, ct.origin_lps))
                    image = write_nifti(
                        ct.hu, ct.spacing, ct.origin_lps, tmp / "images" / split / f"{ct.seriesuid}.nii.gz"
                    )
                    splits[split].append(
                        {"image": f"images/{split}/{Path(image).name}", "seriesuid": ct.seriesuid}
                    )
                    for n in ct.nodules:
                        nodules.append({"seriesuid": ct.seriesuid, "coordX": n.center_lps[0], "coordY": n.center_lps[1],
                                        "coordZ": n.center_lps[2], "diameter_mm": n.diameter_mm})  # fmt: skip
                        if n.diameter_mm > MASK_SIZE - 2:
                            continue
                        try:
                            cubes["injector"].append(cut_cube(ct.hu, affine, n.center_lps))
                            cubes["injector_diameter"].append(n.diameter_mm)
                        except InputError:
                            continue
                    rng = np.random.default_rng(case)
                    for p in _remover_centres(ct, rng, remover_per_scan, affine):
                        try:
                            cubes["remover"].append(cut_cube(ct.hu, affine, p))
                        except InputError:
                            continue
                arrays = {
                    "injector": np.rint(np.asarray(cubes["injector"]).reshape(-1, *(CUBE_SIZE,) * 3)).astype(
                        np.int16
                    ),
                    "injector_diameter": np.asarray(cubes["injector_diameter"], np.float32),
                    "remover": np.rint(np.asarray(cubes["remover"]).reshape(-1, *(CUBE_SIZE,) * 3)).astype(
                        np.int16
                    ),
                }
                with atomic_file(tmp / f"cubes_{split}.npz") as f:
                    np.savez_compressed(f, **arrays)
            write_annotations_csv(nodules, tmp / "annotations.csv")
            content = {**splits, "settings": settings, "annotations": "annotations.csv"}
            with atomic_file(tmp / _COMPLETE) as f:
                f.write_text(json.dumps(content, indent=2) + "\n", encoding="utf-8")
    return str(root)


def ctgan_cube_items(
    dataset_dir: str | os.PathLike, task: str, split: str = "training", allow_empty: bool = False
) -> list[dict[str, Any]]:
    """The items of one task and split: ``{"image": generator input (3, S, S, S), "label": cube (1, S, S, S)}``.

    ``label`` is the real cube in [-1, 1]; ``image`` is it with the centre blanked, the mask and the target
    sphere (the annotated diameter for the injector, none for the remover). Flips and 90-degree turns
    of both keys keep them consistent: the mask and sphere are centred.

    Raises:
        InputError: unknown task, no cube file, or no cube of the task in the split (unless ``allow_empty``).
    """
    if task not in TASKS:
        raise InputError(str(dataset_dir), f"task must be one of {TASKS}, got {task!r}")
    path = Path(dataset_dir) / f"cubes_{split}.npz"
    if not path.is_file():
        raise InputError(path, "no CT-GAN cubes here (create them with ensure_ctgan_dataset)")
    with np.load(path) as z:
        cubes = z[task].astype(np.float32)
        diameters = z["injector_diameter"] if task == "injector" else np.zeros(len(cubes), np.float32)
    if len(cubes) == 0 and not allow_empty:
        raise InputError(path, f"holds no {task} cube")
    items = []
    for cube, d in zip(cubes, diameters, strict=True):
        norm = normalise_hu(cube).astype(np.float32)
        items.append({"image": generator_input(norm, float(d)), "label": norm[None], "diameter_mm": float(d)})
    return items
