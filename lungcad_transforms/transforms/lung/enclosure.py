"""Dense regions enclosed by a lung: the tumours and consolidation a threshold lung mask leaves out.

A tumour against the chest wall or at the hilum, or a consolidated segment, is as dense as the heart, so
no threshold tells it apart; what does is what surrounds it. Along almost every line through such a mass
the nearest obstacles on its two sides are the same lung, or the lung on one side and the chest wall on
the other, and close together. Lines through the heart, the liver or stomach under the diaphragm, the
mediastinum or the hilum run on into the mediastinum, the abdomen or the other lung on one side; and a
pleural effusion at the base lies outside the lungs' own in-plane envelope (it sits between the lung and
the chest wall with no lung beyond it), so it counts as chest wall, never as a candidate.

:func:`enclosed_by_lung` works on a coarse grid (cells of about ``cell_mm``):

1. the lungs are told apart by their cores (the voxels deeper inside than ``split_mm``: the airways that
   join two lungs in a mask are thinner and fall out), each core grown back over its own lung;
2. chest wall: in every slice with lung, the non-lung cells that have lung on at most one side along each
   of the 4 in-plane axes (outside the lungs' in-plane envelope: chest wall, outside air, effusion);
3. every other non-lung cell is a candidate: along each of the 13 axes of a 3x3x3 neighbourhood, it is
   held if the nearest non-candidate cells on its two sides are the same lung, or a lung and the chest
   wall, at most ``max_chord_mm`` apart; a candidate held on at least ``min_axes`` axes is enclosed.

The cost is a few scans of the coarse grid per axis: tens of milliseconds for a whole chest CT.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import product

import cc3d
import numpy as np
from scipy import ndimage

__all__ = ["add_enclosed", "enclosed_by_lung", "lung_identities"]

# one direction per axis of the 26-neighbourhood: its first non-zero component positive
_AXES = [d for d in product((-1, 0, 1), repeat=3) if any(d) and next(c for c in d if c) > 0]
_WALL = 255  # kind code of chest wall cells (1..254: lung identities; 0: candidates)
_NONE = -1  # no obstacle met
_FAR = np.iinfo(np.int32).max  # no obstacle met, while searching forwards (a minimum never picks it)


def lung_identities(lungs: np.ndarray, spacing: Sequence[float], split_mm: float) -> np.ndarray:
    """Label each lung voxel with the lung it belongs to (1, 2, ...; 0 off the lungs and on airway voxels
    far from every lung core).

    The cores (voxels more than ``split_mm`` from the lung boundary; the image border is no boundary) are
    labelled; cores of at least a tenth of the largest are lungs, and each grows back over its own lung
    voxels as far as it came (where two meet, the larger label wins).
    """
    from lungcad_transforms.transforms.lung.functional import dilate_ellipsoid

    outside = np.pad(~lungs, 1, constant_values=False)
    cores = ~dilate_ellipsoid(outside, spacing, split_mm)[1:-1, 1:-1, 1:-1] & lungs
    labels, n = cc3d.connected_components(cores, connectivity=26, return_N=True, out_dtype=np.uint32)
    if n == 0:
        return lungs.astype(np.uint8)
    sizes = np.bincount(labels.reshape(-1), minlength=n + 1)
    sizes[0] = 0
    keep = np.flatnonzero(sizes >= 0.1 * sizes.max())[:254]
    if len(keep) == 1:
        return lungs.astype(np.uint8)
    lut = np.zeros(n + 1, dtype=np.uint8)
    lut[keep] = np.arange(1, len(keep) + 1, dtype=np.uint8)
    out = lut[labels]
    for _ in range(int(np.ceil(split_mm / min(spacing))) + 1):
        grown = ndimage.maximum_filter(out, size=3)
        todo = lungs & (out == 0) & (grown > 0)
        if not todo.any():
            break
        out[todo] = grown[todo]
    return out


def _nearest_along(code: np.ndarray, d1: int, d2: int, after: bool = False) -> np.ndarray:
    """Per cell, the code of the nearest obstacle at or before it (``after``: at or after it) along the
    line that advances one step on axis 0 and ``(d1, d2)`` on axes 1 and 2.

    Codes grow along axis 0 (``position * 256 + kind``), so the nearest obstacle before a cell is the
    largest code on its line up to it and the one after it the smallest from it on. Cells without an
    obstacle hold ``_NONE`` (before) or ``_FAR`` (after), which neither maximum nor minimum picks over a
    real code; a line that leaves the array carries nothing on.
    """
    n_t, n1, n2 = code.shape
    out = code.copy()
    if after:  # walk the lines backwards: from slice t + 1 to t, moving by -(d1, d2)
        d1, d2 = -d1, -d2
        steps, previous, pick = range(n_t - 2, -1, -1), 1, np.minimum
    else:
        steps, previous, pick = range(1, n_t), -1, np.maximum
    dst = (slice(max(d1, 0), n1 + min(d1, 0)), slice(max(d2, 0), n2 + min(d2, 0)))
    src = (slice(max(-d1, 0), n1 + min(-d1, 0)), slice(max(-d2, 0), n2 + min(-d2, 0)))
    for t in steps:
        here = out[t][dst]
        pick(here, out[t + previous][src], out=here)
    return out


def _axis_lines(kinds: np.ndarray, direction: tuple[int, int, int]):
    """``kinds`` with the first non-zero axis of ``direction`` moved first, the direction in that order,
    and the permutation back."""
    first = next(a for a in range(3) if direction[a])
    order = [first] + [a for a in range(3) if a != first]
    return np.ascontiguousarray(kinds.transpose(order)), tuple(direction[a] for a in order), np.argsort(order)


def _obstacles(kinds: np.ndarray, direction: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Per cell, the nearest obstacle (a cell of kind > 0) before and after it along ``direction``, each
    coded as ``position * 256 + kind`` (position along the line's first axis), ``_NONE`` if none."""
    moved, d, back = _axis_lines(kinds, direction)
    position = np.arange(moved.shape[0], dtype=np.int32)[:, None, None]
    obstacle = moved > 0
    code = np.where(obstacle, position * 256 + moved.astype(np.int32), np.int32(_NONE))
    before = _nearest_along(code, d[1], d[2])
    code[~obstacle] = _FAR
    after = _nearest_along(code, d[1], d[2], after=True)
    after[after == _FAR] = _NONE
    return before.transpose(back), after.transpose(back)


def _in_plane_hull(lung: np.ndarray, n_directions: int = 16) -> np.ndarray:
    """Per slice (axis 0), the cells inside the polygon circumscribing that slice's ``lung`` cells with
    ``n_directions`` edge directions: the convex hull, to within a few per cent of its size.

    One support line per direction for all slices at once (skimage's convex_hull_image per slice costs
    ~50x more)."""
    n0, n1, n2 = lung.shape
    i = np.arange(n1, dtype=np.float32)[:, None]
    j = np.arange(n2, dtype=np.float32)[None, :]
    inside = np.ones(lung.shape, dtype=bool)
    for theta in np.linspace(0.0, 2 * np.pi, n_directions, endpoint=False):
        proj = np.cos(theta) * i + np.sin(theta) * j  # (n1, n2)
        support = np.where(lung, proj[None], -np.inf).reshape(n0, -1).max(axis=1)  # per slice
        inside &= proj[None] <= support[:, None, None] + 0.5
    return inside


def chest_wall(identity: np.ndarray, window: int) -> np.ndarray:
    """Cells outside the convex hull, in their slice (axis 0), of the lungs of the ``window`` slices above
    and below it, in the slices that hold lung: the chest wall and beyond. The lungs above and below a mass
    against the chest wall reach the wall, so the hull of their projection takes the mass in, and the
    liver, spleen and stomach under the domes, which the lungs of the slices above overhang."""
    lung = identity > 0
    projected = ndimage.maximum_filter1d(lung, size=2 * window + 1, axis=0, mode="constant", cval=0)
    wall = ~_in_plane_hull(projected)
    wall[~lung.any(axis=(1, 2))] = False  # below the bases and above the apices: abdomen, neck
    return wall


def enclosure_counts(kinds: np.ndarray, spacing: Sequence[float], max_chord_mm: float) -> np.ndarray:
    """Per candidate cell (kind 0), on how many of the 13 axes it is held (see the module docstring)."""
    counts = np.zeros(kinds.shape, dtype=np.uint8)
    candidate = kinds == 0
    for direction in _AXES:
        first = next(a for a in range(3) if direction[a])
        step_mm = float(np.sqrt(sum((c * s) ** 2 for c, s in zip(direction, spacing, strict=True))))
        max_steps = int(max_chord_mm // (step_mm / abs(direction[first])))
        before, after = _obstacles(kinds, direction)
        kb, ka = before & 255, after & 255
        held = (before != _NONE) & (after != _NONE) & ((after >> 8) - (before >> 8) <= max_steps)
        held &= ((kb == ka) & (kb != _WALL)) | ((kb == _WALL) != (ka == _WALL))
        counts += held & candidate
    return counts


def enclosed_by_lung(
    lungs: np.ndarray,
    spacing: Sequence[float],
    max_chord_mm: float = 80.0,
    min_axes: int = 11,
    cell_mm: float = 4.0,
    split_mm: float = 12.0,
    window_mm: float = 40.0,
) -> tuple[np.ndarray, np.ndarray, tuple[int, int, int]]:
    """Coarse cells outside the lungs that the lung encloses (see the module docstring).

    Args:
        lungs: boolean lung mask; axis 0 must be the slice axis (``spacing`` in the same order).
        spacing: voxel size in mm.
        max_chord_mm: longest chord between the obstacles of an enclosed cell (the largest mass taken in).
        min_axes: on how many of the 13 axes a cell must be held.
        cell_mm: edge of the coarse cells (each cell is a whole number of voxels).
        split_mm: depth inside a lung beyond which its voxels are its core (see :func:`lung_identities`).

    Returns:
        ``(enclosed, kinds, factors)``: the boolean coarse grid of enclosed cells, the coarse kind map
        (0 candidate, 1..254 lung identity, 255 chest wall) and the voxels per cell along each axis (cell
        ``c`` covers voxels ``c * factors`` to ``(c + 1) * factors``, the last cell of an axis only up to
        the array's end).
    """
    factors = tuple(max(1, int(round(cell_mm / float(s)))) for s in spacing)
    coarse_spacing = [f * float(s) for f, s in zip(factors, spacing, strict=True)]
    # each cell's centre voxel stands for it (a majority count over the cells costs ~10x more)
    coarse = np.ascontiguousarray(
        lungs[tuple(slice(min(f // 2, n - 1), None, f) for f, n in zip(factors, lungs.shape, strict=True))]
    )
    identity = lung_identities(coarse, coarse_spacing, split_mm)
    kinds = identity.copy()
    kinds[chest_wall(identity, int(round(window_mm / coarse_spacing[0])))] = _WALL
    counts = enclosure_counts(kinds, coarse_spacing, max_chord_mm)
    enclosed = counts >= min_axes
    # an opening drops the thin sheets between the lung surface and the hull (chest wall, not masses)
    opened = ndimage.maximum_filter(ndimage.minimum_filter(enclosed, size=3), size=3) & enclosed
    enclosed = ndimage.maximum_filter(opened, size=3) & enclosed  # the rim of a mass back, not a sheet
    return enclosed, kinds, factors  # type: ignore[return-value]


def add_enclosed(
    work: np.ndarray,
    hu: np.ndarray,
    origin: Sequence[int],
    spacing: Sequence[float],
    dense_hu: tuple[float, float],
    max_chord_mm: float,
    min_axes: int,
) -> tuple[int, int] | None:
    """In place: add to the lung mask ``work`` the dense voxels of the regions the lung encloses.

    Args:
        work: boolean lung mask (slice, row, column) of a box of ``hu``; it may reach beyond ``hu``.
        hu: the CT (slice, row, column); ``work[0, 0, 0]`` is ``hu[origin]``.
        origin: index in ``hu`` of ``work``'s first voxel (may be negative).
        spacing: voxel size in mm, in the same order.
        dense_hu: (low, high): voxels above ``low`` and at most ``high`` HU are added (soft tissue, not air
            or bone).
        max_chord_mm, min_axes: see :func:`enclosed_by_lung`.

    Returns:
        the range of slices of ``work`` that changed, or None.
    """
    if work.shape[0] * float(spacing[0]) < 12.0 or not work.any():
        return None  # a slice or a few: no 3-D enclosure to see
    enclosed, kinds, factors = enclosed_by_lung(work, spacing, max_chord_mm=max_chord_mm, min_axes=min_axes)
    if not enclosed.any():
        return None
    # one cell more into the lung (its dense voxels at the mass's edge) and the chest wall (the mass's
    # base beyond the lungs' hull); never into other candidates (the heart, the mediastinum)
    region = enclosed | (ndimage.maximum_filter(enclosed, size=3) & (kinds > 0) & (kinds != _WALL))
    cells = np.argwhere(region)
    lo = cells.min(axis=0) * np.asarray(factors)
    hi = np.minimum((cells.max(axis=0) + 1) * np.asarray(factors), work.shape)
    # the box of the region, clipped to where the CT is, and off work's in-plane frame (which hole
    # filling needs empty)
    lo = np.maximum(np.maximum(lo, -np.asarray(origin)), (0, 1, 1))
    hi = np.minimum(
        np.minimum(hi, np.asarray(hu.shape) - np.asarray(origin)), np.asarray(work.shape) - (0, 1, 1)
    )
    if (hi <= lo).any():
        return None
    box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
    cell_box = tuple(slice(int(a) // f, -(-int(b) // f)) for a, b, f in zip(lo, hi, factors, strict=True))
    up = region[cell_box]
    for axis, f in enumerate(factors):
        up = np.repeat(up, f, axis=axis)
    up = up[tuple(slice(int(a) - (int(a) // f) * f, None) for a, f in zip(lo, factors, strict=True))]
    up = up[tuple(slice(0, int(b - a)) for a, b in zip(lo, hi, strict=True))]
    values = hu[tuple(slice(int(a + o), int(b + o)) for a, b, o in zip(lo, hi, origin, strict=True))]
    dense = (values > dense_hu[0]) & (values <= dense_hu[1])
    added = up & dense & ~work[box]
    if not added.any():
        return None
    work[box] |= added
    return int(lo[0]), int(hi[0])
