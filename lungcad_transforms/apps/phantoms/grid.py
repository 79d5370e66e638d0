"""Phantom sampling grid and the geometric primitives (tubes, trees) anatomy is drawn with."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from lungcad_transforms.apps.phantoms.tissues import Nodule

__all__ = []


@dataclass(frozen=True)
class _Grid:
    shape: tuple[int, int, int]
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]

    @property
    def box_lo(self) -> np.ndarray:
        return np.asarray(self.origin) - 0.5 * np.asarray(self.spacing)

    @property
    def box_hi(self) -> np.ndarray:
        return np.asarray(self.origin) + (np.asarray(self.shape) - 0.5) * np.asarray(self.spacing)

    def axis(self, d: int) -> np.ndarray:
        return (self.origin[d] + self.spacing[d] * np.arange(self.shape[d])).astype(np.float32)

    def open_coords(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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
        x = self.axis(0)[sl[0]].reshape(-1, 1, 1)
        y = self.axis(1)[sl[1]].reshape(1, -1, 1)
        z = self.axis(2)[sl[2]].reshape(1, 1, -1)
        return x, y, z

    @property
    def soft_width(self) -> float:
        # edge width for partial-volume fractions: about one in-plane voxel
        return float(np.sqrt(self.spacing[0] * self.spacing[1]))


def _validate_grid(shape: Sequence[int], spacing: Sequence[float] | None) -> tuple[int, int, int]:
    shape_t = tuple(int(s) for s in shape)
    if len(shape_t) != 3 or min(shape_t) < 8 or min(shape_t[:2]) < 16:
        raise ValueError(f"phantom shape must be 3-D with at least 16x16x8 voxels, got {tuple(shape)}")
    if spacing is not None:
        sp = tuple(float(s) for s in spacing)
        if len(sp) != 3 or not all(np.isfinite(sp)) or min(sp) <= 0:
            raise ValueError(f"spacing must be three positive finite numbers (mm), got {spacing}")
    return shape_t  # type: ignore[return-value]


def _rng(seed: int, stream: int, *extra: int) -> np.random.Generator:
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, stream, *extra])


def _segment_distance(x, y, z, p0: np.ndarray, p1: np.ndarray):
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
class _Tube:
    """A tapered capsule (vessel, airway, aorta segment...)."""

    p0: np.ndarray
    p1: np.ndarray
    r0: float
    r1: float

    @property
    def rmax(self) -> float:
        return max(self.r0, self.r1)

    def lo_hi(self, pad: float) -> tuple[np.ndarray, np.ndarray]:
        return np.minimum(self.p0, self.p1) - self.rmax - pad, np.maximum(self.p0, self.p1) + self.rmax + pad

    def signed(self, x, y, z, grow: float = 0.0):
        d, s = _segment_distance(x, y, z, self.p0, self.p1)
        return d - (self.r0 + s * (self.r1 - self.r0) + grow)


def _tube_fraction(grid: _Grid, tube: _Tube, grow: float = 0.0):
    """Partial-volume fraction (0..1) of a tube on the grid, within its bounding box."""
    h = grid.soft_width
    sl = grid.bbox(*tube.lo_hi(grow + h))
    if sl is None:
        return None, None
    x, y, z = grid.local_coords(sl)
    frac = np.clip(0.5 - tube.signed(x, y, z, grow) / h, 0.0, 1.0).astype(np.float32)
    return sl, frac


def _paint_tube(
    organs: np.ndarray, grid: _Grid, tube: _Tube, code: int, where: np.ndarray | None = None
) -> None:
    sl = grid.bbox(*tube.lo_hi(0.0))
    if sl is None:
        return
    x, y, z = grid.local_coords(sl)
    inside = tube.signed(x, y, z) <= 0
    if where is not None:
        inside &= where[sl]
    np.copyto(organs[sl], np.uint8(code), where=inside)


def _smooth_noise(rng: np.random.Generator, shape: Sequence[int], factor: int = 4) -> np.ndarray:
    """Unit-variance random field correlated over a few voxels (cheap: drawn coarse, then interpolated).

    scipy has no band-limited noise generator; filtering a coarse white field and zooming it is the
    usual trick and costs a small fraction of filtering a full-size one."""
    coarse_shape = [max(2, -(-int(s) // factor) + 1) for s in shape]
    coarse = ndimage.gaussian_filter(rng.standard_normal(coarse_shape, dtype=np.float32), 0.8)
    zoom = [int(s) / c for s, c in zip(shape, coarse_shape, strict=True)]
    field_ = ndimage.zoom(coarse, zoom, order=1, grid_mode=True, mode="nearest")
    field_ = field_[: shape[0], : shape[1], : shape[2]]
    if field_.shape != tuple(shape):  # zoom rounds the output size
        pad = [(0, int(s) - f) for s, f in zip(shape, field_.shape, strict=True)]
        field_ = np.pad(field_, pad, mode="edge")
    std = float(field_.std()) or 1.0
    return ((field_ - field_.mean()) / std).astype(np.float32)


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v / n if n > 0 else v


def _sphere_directions() -> np.ndarray:
    # the 26 neighbour directions of a voxel: enough to probe whether a sphere fits in a region
    dirs = np.array(
        [(a, b, c) for a in (-1, 0, 1) for b in (-1, 0, 1) for c in (-1, 0, 1) if (a, b, c) != (0, 0, 0)]
    )
    return dirs / np.linalg.norm(dirs, axis=1, keepdims=True)


_DIRS26 = _sphere_directions()


def _grow_tree(
    rng: np.random.Generator,
    targets: np.ndarray,
    root: np.ndarray,
    r_root: float,
    r_min: float,
    length_frac: float = 0.45,
    n_min: int = 3,
    max_depth: int = 16,
) -> list[_Tube]:
    """A space-filling branching tree (vessels or airways) grown into a cloud of target points.

    Kitaoka-style construction: each branch heads for the centroid of the lung region it supplies,
    stops part way, and splits the region in two by a plane through the branch; the child radii follow
    Murray's law (r^3 proportional to the supplied volume). Not in scipy/scikit-image, hence by hand."""
    tubes: list[_Tube] = []
    stack = [(root, np.arange(len(targets)), r_root, 0)]
    while stack:
        start, idx, radius, depth = stack.pop()
        pts = targets[idx]
        centroid = pts.mean(axis=0)
        vec = centroid - start
        dist = float(np.linalg.norm(vec))
        if dist < 1e-6:
            continue
        if len(idx) < n_min or depth >= max_depth:
            tubes.append(_Tube(start, start + 0.8 * vec, radius, 0.7 * radius))
            continue
        frac = length_frac * rng.uniform(0.85, 1.15)
        end = start + frac * vec
        direction = vec / dist
        # the territory is split by a plane that contains the branch, across the territory's widest
        # extent seen along the branch: children then fan out sideways, as in a real lung, instead of
        # stacking along the long axis of an elongated lung
        rel = pts - centroid
        flat = rel - np.outer(rel @ direction, direction)
        axis = np.linalg.eigh(flat.T @ flat)[1][:, -1]
        side = rel @ axis < 0
        n1 = int(side.sum())
        if n1 == 0 or n1 == len(idx):
            tubes.append(_Tube(start, start + 0.8 * vec, radius, 0.7 * radius))
            continue
        tubes.append(_Tube(start, end, radius, radius * 0.95))
        for part in (idx[side], idx[~side]):
            r_child = radius * (len(part) / len(idx)) ** (1.0 / 3.0)
            if r_child >= r_min:
                stack.append((end, part, r_child, depth + 1))
    return tubes


@dataclass
class _NoduleSpec:
    nodule: Nodule
    center: np.ndarray
    radius: float
    hu_solid: float
    hu_ggo: float
    core_frac: float  # part-solid: core radius / radius
    lobe_dirs: np.ndarray  # (3, 3) unit vectors of the lobulation
    lobe_amp: float

    def surface_radius(self, nx, ny, nz):
        """Radius of the (slightly lobulated) surface in the directions (nx, ny, nz); mean over the
        sphere equals ``radius``, so the volume stays that of the nominal sphere to within a few %."""
        bumps = 0.0
        for w in self.lobe_dirs:
            c = nx * w[0] + ny * w[1] + nz * w[2]
            bumps = bumps + (c * c - 1.0 / 3.0)
        return self.radius * (1.0 + self.lobe_amp * bumps / len(self.lobe_dirs))

    def signed(self, x, y, z, radius_scale: float = 1.0):
        dx, dy, dz = x - self.center[0], y - self.center[1], z - self.center[2]
        d = np.sqrt(dx * dx + dy * dy + dz * dz)
        inv = 1.0 / np.maximum(d, 1e-6)
        return d - radius_scale * self.surface_radius(dx * inv, dy * inv, dz * inv)


def _snap(centre: np.ndarray, grid: _Grid) -> np.ndarray:
    idx = np.round((centre - np.asarray(grid.origin)) / np.asarray(grid.spacing))
    idx = np.clip(idx, 0, np.asarray(grid.shape) - 1)
    return np.asarray(grid.origin) + idx * np.asarray(grid.spacing)
