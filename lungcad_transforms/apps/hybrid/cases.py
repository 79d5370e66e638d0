"""One hybrid case: a window of a real scan with synthetic nodules, written as image, labels and lung mask.

:func:`make_case` cuts the background (:func:`~lungcad_transforms.apps.hybrid.backgrounds.cut_case`),
draws the nodules' kinds and sizes, places them (:mod:`~lungcad_transforms.apps.hybrid.placement`),
draws them in with the scan's own resolution and noise (:mod:`~lungcad_transforms.apps.hybrid.insertion`),
finds the scan's own nodule-like spots (hard negatives) and writes the case, returning its datalist entry
and its table rows (LUNA16 world coordinates, LPS mm, through :mod:`lungcad_transforms.data.coords`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lungcad_transforms.apps.hybrid.backgrounds import Background, cut_case, lesion_voxels, scan_noise
from lungcad_transforms.apps.hybrid.hard_negatives import nodule_like_spots
from lungcad_transforms.apps.hybrid.insertion import NoiseSource, insert_nodules
from lungcad_transforms.apps.hybrid.nodule_models import HYBRID_NODULE_KINDS, KIND_WEIGHTS, draw_diameter_mm
from lungcad_transforms.apps.hybrid.placement import lung_maps, place_nodules
from lungcad_transforms.data.coords import voxel_to_world

__all__ = ["HybridCase", "make_case"]


@dataclass
class HybridCase:
    """What one case adds to the dataset: its datalist entry and its rows of each table."""

    entry: dict[str, Any]
    nodules: list[dict[str, Any]] = field(default_factory=list)
    excluded: list[dict[str, Any]] = field(default_factory=list)
    candidates: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _requests(rng: np.random.Generator, count: tuple[int, int], kinds: Sequence[str] | None,
              diameter_range: tuple[float, float]) -> list[tuple[str, float]]:  # fmt: skip
    pool = list(HYBRID_NODULE_KINDS if kinds is None else kinds)
    bad = [k for k in pool if k not in HYBRID_NODULE_KINDS]
    if bad or not pool:
        raise ValueError(f"kinds must be a non-empty subset of {HYBRID_NODULE_KINDS}, got {kinds}")
    weights = np.array([KIND_WEIGHTS[k] for k in pool])
    n = int(rng.integers(int(count[0]), int(count[1]) + 1))
    chosen = rng.choice(pool, size=n, p=weights / weights.sum())
    return [(str(k), draw_diameter_mm(rng, str(k), *diameter_range)) for k in chosen]


def _world(voxel: np.ndarray, affine: np.ndarray) -> tuple[float, float, float]:
    x, y, z = voxel_to_world(np.asarray(voxel, dtype=np.float64)[None], affine)[0]
    return round(float(x), 3), round(float(y), 3), round(float(z), 3)


def make_case(
    bg: Background,
    rng: np.random.Generator,
    uid: str,
    window_mm: Sequence[float] | None,
    nodules_per_case: tuple[int, int],
    kinds: Sequence[str] | None,
    diameter_range_mm: tuple[float, float],
    hard_negatives: int,
    root: Path,
    split: str,
) -> HybridCase | None:
    """Make and write one case under ``root``; ``None`` when no window of the scan fits.

    A window (training case) is flipped and deformed at random; a whole-scan case (``window_mm=None``,
    a test case) is the scan as it is, so its known lesions stay where the user's table says.

    Raises:
        InputError: the scan is too short for the window.
    """
    from lungcad_transforms.data.image_writer import save_nifti

    whole = window_mm is None
    cut = cut_case(bg, rng, window_mm, flip=not whole, deform=not whole)
    if cut is None:
        return None
    hu, lungs, affine = cut
    sp = bg.spacing
    lesions, excluded = [], []
    top = np.asarray(hu.shape) - 1.0
    for vox, (_, reach, row) in zip(lesion_voxels(bg, affine), bg.lesions, strict=True):
        gap = float(np.linalg.norm((np.clip(vox, 0.0, top) - vox) * sp))  # mm from the grid to the centre
        if gap < reach:
            lesions.append((vox * sp, reach, row))
        if gap < 0.5 * float(row["diameter_mm"]):  # part of the lesion is in the case
            excluded.append(row)
    maps = lung_maps(hu, lungs, sp)
    requests = _requests(rng, nodules_per_case, kinds, diameter_range_mm)
    placed, skipped = place_nodules(rng, maps, requests, keep_out=[(c, r) for c, r, _ in lesions])
    noise = NoiseSource(hu, sp, scan_noise(hu, sp), rng)
    out, labels = insert_nodules(hu, lungs, sp, placed, noise)
    avoid = [(m.center, m.reach_mm) for m in placed] + [(c, r) for c, r, _ in lesions]
    spots = nodule_like_spots(out, lungs, sp, avoid=avoid, count=hard_negatives)

    rel = {
        "image": f"images/{split}/{uid}.nii.gz",
        "label": f"labels/{uid}.nii.gz",
        "lungs": f"lungs/{uid}.nii.gz",
    }
    save_nifti(np.clip(np.rint(out), -32768, 32767), affine, root / rel["image"], dtype=np.int16)
    save_nifti(labels, affine, root / rel["label"], dtype=np.uint8)
    save_nifti(lungs, affine, root / rel["lungs"], dtype=np.uint8)
    case = HybridCase(
        entry={**rel, "seriesuid": uid, "background": bg.seriesuid, "n_nodules": len(placed)}, skipped=skipped
    )
    for model in placed:
        centre = model.center / sp
        x, y, z = _world(centre, affine)
        case.nodules.append({"seriesuid": uid, "coordX": x, "coordY": y, "coordZ": z,
                             "diameter_mm": round(model.diameter_mm, 3), "kind": model.kind, "background": bg.seriesuid})  # fmt: skip
        for _ in range(2):
            direction = rng.normal(size=3)
            offset = (
                direction
                / max(np.linalg.norm(direction), 1e-9)
                * model.radius
                * 0.3
                * rng.uniform() ** (1 / 3)
            )
            x, y, z = _world(centre + offset / sp, affine)
            case.candidates.append({"seriesuid": uid, "coordX": x, "coordY": y, "coordZ": z, "class": 1, "kind": model.kind})  # fmt: skip
    for spot in spots:
        x, y, z = _world(spot, affine)
        case.candidates.append({"seriesuid": uid, "coordX": x, "coordY": y, "coordZ": z, "class": 0, "kind": "real_spot"})  # fmt: skip
    for row in excluded:
        case.excluded.append(
            {**{k: row[k] for k in ("coordX", "coordY", "coordZ", "diameter_mm")}, "seriesuid": uid}
        )
    return case
