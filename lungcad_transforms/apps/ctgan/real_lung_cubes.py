"""Training cubes from real chest CTs: nodule-free lung for the remover (no annotation needed, only the known lesions
kept out) and, for the injector, synthetic nodules inserted into real lung (the hybrid data of ``apps.hybrid``)."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lungcad_transforms.apps.ctgan.cubes import CUBE_SIZE, MASK_SIZE, cut_cube
from lungcad_transforms.errors import InputError
from lungcad_transforms.utils.atomic import atomic_dir, atomic_file

logger = logging.getLogger(__name__)

__all__ = ["clear_lung_points", "ensure_real_lung_cubes", "ensure_hybrid_nodule_cubes"]

_COMPLETE = "real_lung.json"
_HYBRID_COMPLETE = "hybrid_nodules.json"


def clear_lung_points(
    lungs: np.ndarray,
    affine_ras: np.ndarray,
    blocked: Sequence[tuple[Sequence[float], float]],
    rng: np.random.Generator,
    n: int,
) -> list[np.ndarray]:
    """Up to ``n`` random lung voxel centres (LPS mm) whose in-paint box keeps 8 mm clear of every blocked sphere.

    Args:
        lungs: ``(X, Y, Z)`` bool lung mask.
        affine_ras: its voxel -> RAS affine.
        blocked: ``(centre LPS mm, radius mm)`` of each nodule or lesion to keep out.
        rng: the generator drawing the points.
        n: how many points at most.
    """
    from lungcad_transforms.data.coords import voxel_to_world

    lung = np.argwhere(lungs)
    if len(lung) == 0:
        return []
    picks = lung[rng.choice(len(lung), size=min(len(lung), 20 * n), replace=False)]
    world = voxel_to_world(picks.astype(np.float64), affine_ras)
    keep: list[np.ndarray] = []
    for p in world:
        if all(np.linalg.norm(p - np.asarray(c)) > r + 8 + MASK_SIZE / 2 for c, r in blocked):
            keep.append(p)
        if len(keep) == n:
            break
    return keep


def _real_backgrounds(
    backgrounds: Sequence[str | os.PathLike] | None, lesions: Sequence[Any] | None
) -> tuple[list[str | os.PathLike], list[Any]]:
    """The folders to search and their known lesions: the project's real chest CTs when none are given."""
    from lungcad_transforms.apps.hybrid.embedded import default_backgrounds

    if backgrounds is None:
        found, known = default_backgrounds()
        return list(found), list(known if lesions is None else lesions)
    return list(backgrounds), list(lesions or [])


def _known_lesion_rows(lesions: Sequence[Any]) -> list[dict[str, Any]]:
    from lungcad_transforms.data.tables import read_annotations

    rows: list[dict[str, Any]] = []
    for item in lesions:
        rows += [dict(item)] if isinstance(item, dict) else read_annotations(item)
    return rows


def ensure_real_lung_cubes(
    dataset_dir: str | os.PathLike,
    per_scan: int = 64,
    seed: int = 0,
    backgrounds: Sequence[str | os.PathLike] | None = None,
    lesions: Sequence[Any] | None = None,
) -> str:
    """Write ``cubes_training.npz`` of nodule-free lung cubes cut from real chest CTs, unless it is there.

    Every CT found under ``backgrounds`` (default: the project's real chest CTs,
    :func:`~lungcad_transforms.apps.hybrid.default_backgrounds`, with their known lesions) gives up to
    ``per_scan`` 1 mm cubes centred on random voxels of its lung mask, their in-paint boxes at least 8 mm
    clear of every known lesion's keep-out sphere. A scan thinner than the cube (the LIDC slabs) gives none.
    The cube centres (LPS mm) are stored as ``remover_centre_lps``. The file has the layout of :func:`~lungcad_transforms.apps.ctgan.ensure_ctgan_dataset`'s (``remover``
    cubes, no ``injector`` cube), so :func:`~lungcad_transforms.apps.ctgan.ctgan_cube_items` reads it;
    with no real CT found it holds no cube and a log line says where they were looked for.

    Returns:
        ``str(dataset_dir)``.
    """
    from lungcad_transforms.apps.hybrid.backgrounds import load_background
    from lungcad_transforms.data.image_reader import find_images
    from lungcad_transforms.utils.locks import dataset_lock

    root = Path(dataset_dir)
    with dataset_lock(root):
        if (root / _COMPLETE).is_file():
            return str(root)
        backgrounds, lesions = _real_backgrounds(backgrounds, lesions)
        rows = _known_lesion_rows(lesions)
        cubes: list[np.ndarray] = []
        centres: list[np.ndarray] = []
        used: list[dict[str, Any]] = []
        rng = np.random.default_rng(seed)
        for entry in [
            e for folder in backgrounds for e in find_images(folder) if e.get("modality") in ("", "CT")
        ]:
            try:
                bg = load_background(entry, rows)
            except InputError as err:
                logger.info("no real lung cubes from %s: %s", entry.get("image"), err)
                continue
            blocked = [(c, r) for c, r, _ in bg.lesions]
            taken = 0
            for p in clear_lung_points(bg.lungs, bg.affine, blocked, rng, 4 * per_scan):
                try:
                    cubes.append(cut_cube(bg.hu, bg.affine, p, bg.name))
                except InputError:  # the cube crosses the scan border
                    continue
                centres.append(p)
                taken += 1
                if taken == per_scan:
                    break
            used.append({"scan": bg.name, "seriesuid": bg.seriesuid, "cubes": taken})
        if not used:
            logger.info("no real chest CT found in %s: no real lung cubes for the remover", list(backgrounds))
        with atomic_dir(root) as tmp:
            arrays = {
                "injector": np.zeros((0, *(CUBE_SIZE,) * 3), np.int16),
                "injector_diameter": np.zeros(0, np.float32),
                "remover": np.rint(np.asarray(cubes).reshape(-1, *(CUBE_SIZE,) * 3)).astype(np.int16),
                "remover_centre_lps": np.asarray(centres, np.float64).reshape(-1, 3),
            }
            with atomic_file(tmp / "cubes_training.npz") as f:
                np.savez_compressed(f, **arrays)
            content = {"scans": used, "settings": {"per_scan": int(per_scan), "seed": int(seed)}}
            with atomic_file(tmp / _COMPLETE) as f:
                f.write_text(json.dumps(content, indent=2) + "\n", encoding="utf-8")
    return str(root)


def ensure_hybrid_nodule_cubes(
    dataset_dir: str | os.PathLike,
    cases: int = 16,
    nodules_per_case: Sequence[int] = (2, 4),
    diameter_mm: Sequence[float] = (4.0, 12.0),
    window_mm: Sequence[float] = (128.0, 128.0, 80.0),
    kinds: Sequence[str] = ("solid", "juxtavascular", "spiculated"),
    seed: int = 0,
    backgrounds: Sequence[str | os.PathLike] | None = None,
    lesions: Sequence[Any] | None = None,
) -> str:
    """Write ``cubes_training.npz`` of injector cubes: synthetic nodules in real lung, unless it is there.

    From every CT found under ``backgrounds`` (default: the project's real chest CTs with their known lesions,
    :func:`~lungcad_transforms.apps.hybrid.default_backgrounds`) :func:`~lungcad_transforms.apps.hybrid.write_hybrid_dataset`
    makes ``cases`` windows of ``window_mm`` (flipped, slightly deformed) with ``nodules_per_case`` nodules of
    ``diameter_mm`` of the solid-textured ``kinds`` inserted into the lung (the injector is told a diameter, not
    a density: ground-glass nodules among its targets would teach it an average of the two, fainter than a solid
    nodule), kept clear of the known lesions; the 1 mm cube around each nodule that
    fits the in-paint box and the window is kept with its diameter. So the injector learns nodules inside real
    parenchyma, vessels and noise, not only the phantoms'. The cases themselves are not kept. The file has the
    layout of :func:`~lungcad_transforms.apps.ctgan.ensure_ctgan_dataset`'s (``injector`` cubes, no ``remover``
    cube); with no usable real CT it holds no cube and a log line says why.

    Returns:
        ``str(dataset_dir)``.
    """
    import shutil

    from lungcad_transforms.apps.hybrid.dataset import write_hybrid_dataset
    from lungcad_transforms.data.image_reader import load_image
    from lungcad_transforms.data.tables import read_annotations
    from lungcad_transforms.utils.locks import dataset_lock

    root = Path(dataset_dir)
    settings = {"cases": int(cases), "nodules_per_case": [int(n) for n in nodules_per_case],
                "diameter_mm": [float(d) for d in diameter_mm], "window_mm": [float(w) for w in window_mm],
                "kinds": list(kinds), "seed": int(seed)}  # fmt: skip
    with dataset_lock(root):
        if (root / _HYBRID_COMPLETE).is_file():
            return str(root)
        backgrounds, lesions = _real_backgrounds(backgrounds, lesions)
        cubes: list[np.ndarray] = []
        diameters: list[float] = []
        note = ""
        with atomic_dir(root) as tmp:
            hybrid = tmp / "hybrid"
            try:
                datalist = json.loads(
                    write_hybrid_dataset(
                        list(backgrounds), hybrid, cases_per_background=int(cases), test_cases_per_background=0,
                        nodules_per_case=tuple(int(n) for n in nodules_per_case), window_mm=tuple(window_mm),
                        test_backgrounds=[], val_fraction=0.0, known_lesions=lesions,
                        diameter_range_mm=tuple(diameter_mm), kinds=tuple(kinds),
                        hard_negatives_per_case=0, seed=int(seed),
                    ).read_text(encoding="utf-8")
                )  # fmt: skip
            except InputError as err:
                datalist, note = {}, str(err)
            nodules = read_annotations(hybrid / "annotations.csv") if datalist else []
            for entry in (e for items in datalist.values() for e in items):
                image = load_image(str(hybrid / entry["image"]))
                hu = np.asarray(image[0], dtype=np.float32)
                affine = np.asarray(image.affine, dtype=np.float64)
                for n in (n for n in nodules if n["seriesuid"] == entry["seriesuid"]):
                    if n["diameter_mm"] > MASK_SIZE - 2:
                        continue
                    try:
                        cubes.append(cut_cube(hu, affine, (n["coordX"], n["coordY"], n["coordZ"])))
                    except InputError:  # the cube crosses the window's border
                        continue
                    diameters.append(float(n["diameter_mm"]))
            shutil.rmtree(hybrid, ignore_errors=True)
            if not cubes:
                logger.info(
                    "no hybrid nodule cubes for the injector (%s)", note or f"none fit in {list(backgrounds)}"
                )
            arrays = {
                "injector": np.rint(np.asarray(cubes).reshape(-1, *(CUBE_SIZE,) * 3)).astype(np.int16),
                "injector_diameter": np.asarray(diameters, np.float32),
                "remover": np.zeros((0, *(CUBE_SIZE,) * 3), np.int16),
            }
            with atomic_file(tmp / "cubes_training.npz") as f:
                np.savez_compressed(f, **arrays)
            content = {"cubes": len(cubes), "settings": settings, "note": note}
            with atomic_file(tmp / _HYBRID_COMPLETE) as f:
                f.write_text(json.dumps(content, indent=2) + "\n", encoding="utf-8")
    return str(root)
