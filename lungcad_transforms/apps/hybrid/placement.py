"""Where a synthetic nodule goes in a real lung: inside the LungMask, as its kind occurs.

Solid, part-solid, ground-glass and spiculated nodules sit in the parenchyma, clear of the pleura and of
the larger vessels; juxtapleural nodules straddle the pleural surface (centre 0.3-0.7 radii inside the
lung, so the nodule abuts the chest wall, mediastinum or diaphragm); juxtavascular nodules touch a vessel
of the scan itself. Every nodule lies wholly in the case grid, away from the other nodules and from the
scan's known lesions. A nodule that cannot fit is shrunk (to 80 % at a time, down to 3 mm) and, failing
that, skipped with a reason the caller reports.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from lungcad_transforms.apps.hybrid.nodule_models import NoduleModel, draw_nodule_model

__all__ = ["LungMaps", "lung_maps", "place_nodules"]

_VESSEL_HU = -400.0  # smoothed attenuation above which a voxel inside the lungs is vessel (or airway wall)


@dataclass
class LungMaps:
    """Distance maps (mm) of one case used to place nodules.

    Attributes:
        spacing: mm per voxel.
        depth: distance of each lung voxel to the nearest non-lung voxel (0 outside the lungs).
        to_vessel: distance to the nearest vessel voxel inside the lungs.
        to_big_vessel: distance to the nearest vessel thicker than about two voxels.
    """

    spacing: np.ndarray
    depth: np.ndarray
    to_vessel: np.ndarray
    to_big_vessel: np.ndarray


def lung_maps(hu: np.ndarray, lungs: np.ndarray, spacing: Sequence[float]) -> LungMaps:
    """The distance maps of a case: lung depth, distance to vessels and to large vessels (mm)."""
    sp = np.asarray(spacing, dtype=np.float64)
    depth = ndimage.distance_transform_edt(lungs, sampling=sp).astype(np.float32)
    smooth = ndimage.gaussian_filter(hu.astype(np.float32), sigma=0.7 / sp)
    vessel = lungs & (smooth > _VESSEL_HU) & (depth > 1.0)
    big = ndimage.binary_erosion(vessel)
    far = np.float32(1e4)
    to_vessel = (
        ndimage.distance_transform_edt(~vessel, sampling=sp).astype(np.float32) if vessel.any() else None
    )
    to_big = ndimage.distance_transform_edt(~big, sampling=sp).astype(np.float32) if big.any() else None
    return LungMaps(
        sp,
        depth,
        np.full(hu.shape, far) if to_vessel is None else to_vessel,
        np.full(hu.shape, far) if to_big is None else to_big,
    )


def _allowed(maps: LungMaps, kind: str, radius: float, reach: float) -> np.ndarray:
    if kind == "juxtapleural":
        ok = (maps.depth >= 0.3 * radius) & (maps.depth <= 0.7 * radius) & (maps.to_big_vessel >= radius)
    elif kind == "juxtavascular":
        ok = (
            (maps.depth >= radius + 1.0)
            & (maps.to_big_vessel >= 0.6 * radius)
            & (maps.to_big_vessel <= radius)
        )
    else:
        ok = (maps.depth >= reach + 1.0) & (maps.to_big_vessel >= radius)
    # the whole nodule inside the grid
    margin = np.ceil(reach / maps.spacing).astype(int) + 1
    inner = np.zeros_like(ok)
    if np.all(2 * margin < np.asarray(ok.shape)):
        inner[margin[0] : -margin[0], margin[1] : -margin[1], margin[2] : -margin[2]] = True
    return ok & inner


def _clear(centre_mm: np.ndarray, reach: float, taken: Sequence[tuple[np.ndarray, float]]) -> bool:
    return all(np.linalg.norm(centre_mm - c) >= reach + r + 2.0 for c, r in taken)


def place_nodules(
    rng: np.random.Generator,
    maps: LungMaps,
    requests: Sequence[tuple[str, float]],
    keep_out: Sequence[tuple[np.ndarray, float]] = (),
    attempts: int = 40,
) -> tuple[list[NoduleModel], list[str]]:
    """Place one nodule per ``(kind, diameter_mm)`` request.

    Args:
        rng: draws the places and the shapes.
        maps: :func:`lung_maps` of the case.
        requests: what to place.
        keep_out: ``(centre in grid mm, radius mm)`` the nodules keep clear of (the scan's known lesions).
        attempts: random centres tried per size.

    Returns:
        the placed nodules (centres in grid mm: voxel index x spacing) and one line per request that could
        not be placed (``"<kind> <d> mm: <reason>"``).
    """
    placed: list[NoduleModel] = []
    skipped: list[str] = []
    taken = [(np.asarray(c, dtype=np.float64), float(r)) for c, r in keep_out]
    for kind, diameter in requests:
        d = float(diameter)
        model = None
        while model is None:
            trial = draw_nodule_model(rng, kind, np.zeros(3), d)
            ok = _allowed(maps, kind, trial.radius, trial.reach_mm)
            where = np.flatnonzero(ok)
            for _ in range(attempts if len(where) else 0):
                centre = (
                    np.asarray(np.unravel_index(where[rng.integers(len(where))], ok.shape)) * maps.spacing
                )
                if _clear(centre, trial.reach_mm, taken):
                    trial.center = centre.astype(np.float64)
                    model = trial
                    break
            if model is None:
                if d <= 3.0:
                    break
                d = max(3.0, 0.8 * d)
        if model is None:
            skipped.append(f"{kind} {float(diameter):.1f} mm: no place in these lungs fits it, even at 3 mm")
            continue
        placed.append(model)
        taken.append((model.center, model.reach_mm))
    return placed, skipped
