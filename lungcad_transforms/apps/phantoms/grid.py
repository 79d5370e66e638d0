"""The voxel grid a phantom is rendered on: world coordinates of its voxels and boxes of them.

A :class:`Grid` is the image's geometry in LPS world millimetres (``origin`` is the centre of voxel
``(0, 0, 0)``). The anatomy is laid out in world millimetres, independent of any grid; a renderer asks
the grid for the voxel coordinates of a structure's bounding box and evaluates the structure only there.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = []


@dataclass(frozen=True)
class Grid:
    """Shape, spacing (mm) and origin (LPS mm of voxel (0, 0, 0)) of a phantom image.

    Examples:
        >>> g = Grid((4, 4, 2), (1.0, 1.0, 2.0), (0.0, 0.0, 0.0))
        >>> g.bbox(np.array([0.6, 0.0, 0.0]), np.array([1.4, 0.0, 0.0]))
        (slice(0, 3, None), slice(0, 1, None), slice(0, 1, None))
    """

    shape: tuple[int, int, int]
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]

    @property
    def box_lo(self) -> np.ndarray:
        """World corner of the image box (the outer face of the first voxels)."""
        return np.asarray(self.origin) - 0.5 * np.asarray(self.spacing)

    @property
    def box_hi(self) -> np.ndarray:
        """World corner of the image box opposite :attr:`box_lo`."""
        return np.asarray(self.origin) + (np.asarray(self.shape) - 0.5) * np.asarray(self.spacing)

    def axis(self, d: int) -> np.ndarray:
        """World coordinates (float32) of the voxel centres along axis ``d``."""
        return (self.origin[d] + self.spacing[d] * np.arange(self.shape[d])).astype(np.float32)

    def open_coords(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Voxel-centre coordinates as open (broadcastable) arrays of shapes (X,1,1), (1,Y,1), (1,1,Z)."""
        return (
            self.axis(0).reshape(-1, 1, 1),
            self.axis(1).reshape(1, -1, 1),
            self.axis(2).reshape(1, 1, -1),
        )

    def bbox(self, lo_mm: np.ndarray, hi_mm: np.ndarray) -> tuple[slice, slice, slice] | None:
        """Index slices of the voxels whose centres may lie in the world box [lo_mm, hi_mm]."""
        sl = []
        for d in range(3):
            a = math.floor((lo_mm[d] - self.origin[d]) / self.spacing[d])
            b = math.ceil((hi_mm[d] - self.origin[d]) / self.spacing[d]) + 1
            a, b = max(a, 0), min(b, self.shape[d])
            if a >= b:
                return None
            sl.append(slice(a, b))
        return tuple(sl)  # type: ignore[return-value]

    def local_coords(self, sl: tuple[slice, slice, slice]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Open voxel-centre coordinates of the sub-box ``sl`` (as returned by :meth:`bbox`)."""
        x = self.axis(0)[sl[0]].reshape(-1, 1, 1)
        y = self.axis(1)[sl[1]].reshape(1, -1, 1)
        z = self.axis(2)[sl[2]].reshape(1, 1, -1)
        return x, y, z

    @property
    def soft_width(self) -> float:
        """Edge width (mm) of partial-volume fractions: about one in-plane voxel."""
        return float(np.sqrt(self.spacing[0] * self.spacing[1]))


def validate_grid(shape: Sequence[int], spacing: Sequence[float] | None) -> tuple[int, int, int]:
    """``shape`` as a tuple of ints; ValueError for a shape or spacing no phantom can be drawn on."""
    shape_t = tuple(int(s) for s in shape)
    if len(shape_t) != 3 or min(shape_t) < 8 or min(shape_t[:2]) < 16:
        raise ValueError(f"phantom shape must be 3-D with at least 16x16x8 voxels, got {tuple(shape)}")
    if spacing is not None:
        sp = tuple(float(s) for s in spacing)
        if len(sp) != 3 or not all(np.isfinite(sp)) or min(sp) <= 0:
            raise ValueError(f"spacing must be three positive finite numbers (mm), got {spacing}")
    return shape_t  # type: ignore[return-value]


def snap_to_grid(centre: np.ndarray, grid: Grid) -> np.ndarray:
    """The world position of the voxel centre nearest to ``centre`` (clipped into the grid)."""
    idx = np.round((centre - np.asarray(grid.origin)) / np.asarray(grid.spacing))
    idx = np.clip(idx, 0, np.asarray(grid.shape) - 1)
    return np.asarray(grid.origin) + idx * np.asarray(grid.spacing)
