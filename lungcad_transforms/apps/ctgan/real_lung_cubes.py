"""Remover training cubes from real chest CTs: nodule-free lung needs no annotation, only the known lesions kept out."""

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

__all__ = ["clear_lung_points", "ensure_real_lung_cubes"]

_COMPLETE = "real_lung.json"


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
    from lungcad_transforms.apps.hybrid.embedded import default_backgrounds
    from lungcad_transforms.data.image_reader import find_images
    from lungcad_transforms.utils.locks import dataset_lock

    root = Path(dataset_dir)
    with dataset_lock(root):
        if (root / _COMPLETE).is_file():
            return str(root)
        if backgrounds is None:
            backgrounds, found_lesions = default_backgrounds()
            lesions = found_lesions if lesions is None else lesions
        rows = _known_lesion_rows(lesions or [])
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
