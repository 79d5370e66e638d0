"""Geometric primitives the anatomy is built from: tapered tubes (capsules) and ellipsoids.

Vessels, airways, the aorta, the oesophagus and bowel loops are :class:`Tube` s; organs are ellipsoids.
Each primitive is evaluated in world millimetres on broadcastable coordinate arrays (a grid's open
coordinates, or a flat list of points), and painted on a grid within its bounding box only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from lungcad_transforms.apps.phantoms.grid import Grid

__all__ = []


def unit(v: np.ndarray) -> np.ndarray:
    """``v`` scaled to length 1 (a zero vector stays zero)."""
    n = float(np.linalg.norm(v))
    return v / n if n > 0 else v


def _sphere_directions() -> np.ndarray:
    # the 26 neighbour directions of a voxel: enough to probe whether a sphere fits in a region
    dirs = np.array(
        [(a, b, c) for a in (-1, 0, 1) for b in (-1, 0, 1) for c in (-1, 0, 1) if (a, b, c) != (0, 0, 0)]
    )
    return dirs / np.linalg.norm(dirs, axis=1, keepdims=True)


#: (26, 3) unit vectors towards a voxel's 26 neighbours.
DIRS26 = _sphere_directions()


def segment_distance(x, y, z, p0: np.ndarray, p1: np.ndarray):
    """Distance of points to the segment p0-p1, and the position (0..1) of the closest point on it.

    Works on any broadcastable coordinate arrays (open grids or flat point lists)."""
    ax = p1 - p0
    len2 = float(ax @ ax)
    dx, dy, dz = x - p0[0], y - p0[1], z - p0[2]
    if len2 < 1e-12:
        return np.sqrt(dx * dx + dy * dy + dz * dz), np.zeros(
            np.broadcast_shapes(dx.shape, dy.shape, dz.shape)
        )
    s = (dx * ax[0] + dy * ax[1] + dz * ax[2]) * (1.0 / len2)
    s = np.clip(s, 0.0, 1.0)
    qx, qy, qz = dx - s * ax[0], dy - s * ax[1], dz - s * ax[2]
    return np.sqrt(qx * qx + qy * qy + qz * qz), s


@dataclass
class Tube:
    """A tapered capsule (vessel, airway, aorta segment...) from ``p0`` (radius ``r0``) to ``p1`` (``r1``)."""

    p0: np.ndarray
    p1: np.ndarray
    r0: float
    r1: float

    @property
    def rmax(self) -> float:
        return max(self.r0, self.r1)

    def lo_hi(self, pad: float) -> tuple[np.ndarray, np.ndarray]:
        """World bounding box of the tube grown by ``pad`` mm."""
        return np.minimum(self.p0, self.p1) - self.rmax - pad, np.maximum(self.p0, self.p1) + self.rmax + pad

    def signed(self, x, y, z, grow: float = 0.0):
        """Signed distance (mm) of points to the tube's surface grown by ``grow``: negative inside."""
        d, s = segment_distance(x, y, z, self.p0, self.p1)
        return d - (self.r0 + s * (self.r1 - self.r0) + grow)


def tube_fraction(grid: Grid, tube: Tube, grow: float = 0.0):
    """Partial-volume fraction (0..1) of a tube on the grid, within its bounding box.

    Returns ``(slices, fraction)``, or ``(None, None)`` when the tube misses the grid."""
    h = grid.soft_width
    sl = grid.bbox(*tube.lo_hi(grow + h))
    if sl is None:
        return None, None
    x, y, z = grid.local_coords(sl)
    frac = np.clip(0.5 - tube.signed(x, y, z, grow) / h, 0.0, 1.0).astype(np.float32)
    return sl, frac


def paint_tube(
    tissues: np.ndarray, grid: Grid, tube: Tube, code: int, where: np.ndarray | None = None
) -> None:
    """Set the voxels whose centres lie in ``tube`` (and in ``where``, if given) to ``code``."""
    sl = grid.bbox(*tube.lo_hi(0.0))
    if sl is None:
        return
    x, y, z = grid.local_coords(sl)
    inside = tube.signed(x, y, z) <= 0
    if where is not None:
        inside &= where[sl]
    np.copyto(tissues[sl], np.uint8(code), where=inside)


def ellipsoid_q(x, y, z, c, r):
    """Quadratic form of the axis-aligned ellipsoid (centre ``c``, radii ``r``): <= 1 inside."""
    return ((x - c[0]) / r[0]) ** 2 + ((y - c[1]) / r[1]) ** 2 + ((z - c[2]) / r[2]) ** 2


def paint_ellipsoid(
    tissues: np.ndarray,
    grid: Grid,
    c,
    r,
    code: int,
    where: np.ndarray,
    scale: float = 1.0,
    extra: Callable | None = None,
) -> None:
    """Set the voxels in the ellipsoid (radii ``r * scale``), in ``where`` and in ``extra(x, y, z)`` to ``code``."""
    r = np.asarray(r) * scale
    sl = grid.bbox(np.asarray(c) - r, np.asarray(c) + r)
    if sl is None:
        return
    lx, ly, lz = grid.local_coords(sl)
    inside = (ellipsoid_q(lx, ly, lz, c, r) <= 1) & where[sl]
    if extra is not None:
        inside &= extra(lx, ly, lz)
    np.copyto(tissues[sl], np.uint8(code), where=inside)
