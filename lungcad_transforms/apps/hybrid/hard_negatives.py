"""Hard negatives from real anatomy: the nodule-like spots of a scan (vessel crossings, vessels seen end-on).

Blobs of 3-10 mm are found with scikit-image's difference-of-Gaussian detector (``blob_dog``, sigmas per
axis from the voxel size) in the lung window of the scan restricted to the lungs; those that are dense
(smoothed HU above -500 at the centre), inside the lung and clear of every nodule and known lesion are
the candidates a detector confuses with nodules; the densest come first.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

__all__ = ["nodule_like_spots"]


def nodule_like_spots(
    hu: np.ndarray,
    lungs: np.ndarray,
    spacing: Sequence[float],
    avoid: Sequence[tuple[np.ndarray, float]] = (),
    count: int = 20,
    clearance_mm: float = 5.0,
    min_separation_mm: float = 6.0,
) -> list[np.ndarray]:
    """Up to ``count`` nodule-like spots of a scan, densest first, as voxel indices (float, ``(3,)``).

    Args:
        hu: the scan (HU).
        lungs: its lung mask.
        spacing: mm per voxel.
        avoid: ``(centre in grid mm, radius mm)`` of nodules and lesions; a spot keeps ``clearance_mm``
            beyond each radius.
        count: how many at most.
        clearance_mm: see ``avoid``.
        min_separation_mm: spots keep this distance from each other.

    Examples:
        >>> hu = np.full((48, 48, 24), -850.0, np.float32)
        >>> hu[20:24, 20:24, 10:14] = 40.0  # a 4 mm dense spot
        >>> spots = nodule_like_spots(hu, np.ones(hu.shape, bool), (1.0, 1.0, 1.0))
        >>> len(spots) >= 1 and bool(np.all(np.abs(spots[0] - [21.5, 21.5, 11.5]) <= 1.5))
        True
    """
    from skimage.feature import blob_dog

    sp = np.asarray(spacing, dtype=np.float64)
    if count <= 0 or not lungs.any():
        return []
    # the detector runs on the lungs' bounding box (a whole chest CT is mostly not lung)
    where = np.argwhere(lungs)
    lo, hi = where.min(axis=0), where.max(axis=0) + 1
    box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
    window = (np.clip(hu[box], -1000.0, 200.0) + 1000.0) / 1200.0
    window = np.where(lungs[box], window, 0.0).astype(np.float32)
    blobs = blob_dog(
        window, min_sigma=tuple(1.0 / sp), max_sigma=tuple(3.5 / sp), threshold=0.02, exclude_border=False
    )
    if len(blobs) == 0:
        return []
    centres = blobs[:, :3] + lo
    smooth = ndimage.gaussian_filter(hu.astype(np.float32), sigma=0.7 / sp)
    depth = ndimage.distance_transform_edt(lungs, sampling=sp)
    idx = np.clip(np.rint(centres).astype(int), 0, np.asarray(hu.shape) - 1)
    density = smooth[tuple(idx.T)]
    keep = (density > -500.0) & (depth[tuple(idx.T)] >= 1.5)
    order = np.argsort(-density, kind="stable")
    chosen: list[np.ndarray] = []
    for i in order:
        if not keep[i]:
            continue
        mm = centres[i] * sp
        if any(np.linalg.norm(mm - np.asarray(c)) < r + clearance_mm for c, r in avoid):
            continue
        if any(np.linalg.norm(mm - other * sp) < min_separation_mm for other in chosen):
            continue
        chosen.append(centres[i].astype(np.float64))
        if len(chosen) == count:
            break
    return chosen
