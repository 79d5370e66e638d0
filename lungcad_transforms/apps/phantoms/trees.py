"""Vessel and airway trees: branching tubes grown from the hila into each lung.

:func:`grow_tree` builds one space-filling tree into a cloud of lung points; :class:`TreesMixin` gives
the :class:`~lungcad_transforms.apps.phantoms.anatomy.Anatomy` its pulmonary vessels (two arterial roots
per lung, at the hilum and below it) and its segmental airways (from the end of each main bronchus).
"""

from __future__ import annotations

import numpy as np

from lungcad_transforms.apps.phantoms.shapes import Tube

__all__ = []


def grow_tree(
    rng: np.random.Generator,
    targets: np.ndarray,
    root: np.ndarray,
    r_root: float,
    r_min: float,
    length_frac: float = 0.45,
    n_min: int = 3,
    max_depth: int = 16,
) -> list[Tube]:
    """A space-filling branching tree (vessels or airways) grown into a cloud of target points.

    Kitaoka-style construction: each branch heads for the centroid of the lung region it supplies,
    stops part way, and splits the region in two by a plane through the branch; the child radii follow
    Murray's law (r^3 proportional to the supplied volume). Not in scipy/scikit-image, hence by hand."""
    tubes: list[Tube] = []
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
            tubes.append(Tube(start, start + 0.8 * vec, radius, 0.7 * radius))
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
            tubes.append(Tube(start, start + 0.8 * vec, radius, 0.7 * radius))
            continue
        tubes.append(Tube(start, end, radius, radius * 0.95))
        for part in (idx[side], idx[~side]):
            r_child = radius * (len(part) / len(idx)) ** (1.0 / 3.0)
            if r_child >= r_min:
                stack.append((end, part, r_child, depth + 1))
    return tubes


class TreesMixin:
    """The lung vessel and airway trees of an anatomy (needs the lungs laid out: ``sides``, hila)."""

    def grow_trees(self, rng: np.random.Generator) -> None:
        """Grow ``vessels`` and ``airway_tree`` into the lungs, tapering to the grid's resolution."""
        self.vessels = []
        self.airway_tree = []
        if not self.chest:
            return
        h = self._min_voxel
        r_vessel_min = max(0.3, 0.4 * h)
        for side in self.sides:
            n_pts = 1500
            for root in (self.hilum[side], self.hilum_low[side]):
                pts = self.sample_lung_points(rng, n_pts, side)
                if len(pts) < 20:
                    continue
                r0 = min(0.045 * self.a, 0.18 * self.lung_hw[side])
                self.vessels += grow_tree(rng, pts, root, r0, r_vessel_min)
            root, r0 = self.airway_roots[side]
            pts = self.sample_lung_points(rng, 600, side)
            if len(pts) >= 20:
                r_air_min = max(0.6, 1.1 * h)
                self.airway_tree += grow_tree(rng, pts, root, r0, r_air_min, length_frac=0.4)
