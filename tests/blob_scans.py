"""Scans with soft-tissue blobs at known LPS positions on an anisotropic grid, and their candidates table."""

from __future__ import annotations

import numpy as np

from lungcad_transforms.data.image_writer import write_nifti

SPACING = (0.8, 0.7, 1.5)  # anisotropic, like a real chest CT


ORIGIN = (-40.3, -35.1, -120.0)  # LPS world of voxel (0, 0, 0)


SHAPE = (96, 100, 48)


SCALES = ((20.0, 20.0, 20.0), (30.0, 30.0, 30.0), (40.0, 40.0, 40.0))


def scan_with_blobs(centres_lps, sigma_mm: float = 2.0) -> np.ndarray:
    """Lung-like background (-800 HU) with a soft-tissue blob at each LPS centre (phantom index order = LPS)."""
    grid = np.indices(SHAPE, dtype=np.float64)
    world = [ORIGIN[a] + grid[a] * SPACING[a] for a in range(3)]
    hu = np.full(SHAPE, -800.0)
    for c in centres_lps:
        d2 = sum((world[a] - c[a]) ** 2 for a in range(3))
        hu += 850.0 * np.exp(-d2 / (2 * sigma_mm**2))
    return hu.astype(np.int16)


def write_two_scans(tmp_path):
    """Two NIfTI scans with blobs at known world positions, and a LUNA16 candidates table for them."""
    centres = {"scan.a": [(-10.37, 3.21, -90.4), (20.0, -15.0, -75.0)], "scan.b": [(1.1, 0.6, -84.3)]}
    scans = []
    for uid, cs in centres.items():
        path = write_nifti(scan_with_blobs(cs), SPACING, ORIGIN, tmp_path / f"{uid}.nii.gz")
        scans.append({"image": str(path), "seriesuid": uid})
    rows = ["seriesuid,coordX,coordY,coordZ,class"]
    for uid, cs in centres.items():
        rows += [f"{uid},{x},{y},{z},1" for x, y, z in cs]
        rows.append(f"{uid},{cs[0][0] + 15.0},{cs[0][1]},{cs[0][2]},0")
    table = tmp_path / "candidates.csv"
    table.write_text("\n".join(rows) + "\n")
    return scans, table, centres
