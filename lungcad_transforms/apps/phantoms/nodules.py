"""Nodules of the anatomy: their shape (:class:`NoduleSpec`) and where they are placed in the lungs.

:class:`NodulePlacementMixin` gives the
:class:`~lungcad_transforms.apps.phantoms.anatomy.Anatomy` its ``nodules``: each kind is placed where it
occurs in a real lung: solid, part-solid and ground-glass nodules inside the parenchyma, clear of the
pleura, of the larger vessels and of each other; juxtapleural nodules against the costal pleura; and
juxtavascular nodules touching a vessel. Centres are snapped to voxel centres of the grid the anatomy
was drawn for.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lungcad_transforms.apps.phantoms.grid import Grid, snap_to_grid
from lungcad_transforms.apps.phantoms.results import Nodule
from lungcad_transforms.apps.phantoms.shapes import DIRS26, Tube, unit

__all__ = []


@dataclass
class NoduleSpec:
    """A placed nodule and the shape and attenuation it is rendered with."""

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
        """Signed distance (mm) of points to the surface scaled by ``radius_scale``: negative inside."""
        dx, dy, dz = x - self.center[0], y - self.center[1], z - self.center[2]
        d = np.sqrt(dx * dx + dy * dy + dz * dz)
        inv = 1.0 / np.maximum(d, 1e-6)
        return d - radius_scale * self.surface_radius(dx * inv, dy * inv, dz * inv)


class NodulePlacementMixin:
    """Placing nodules in the lungs of an anatomy (needs the lungs and the vessel trees)."""

    def place_nodules(
        self,
        rng: np.random.Generator,
        kinds: Sequence[str],
        diameter_range: tuple[float, float],
        snap: Grid,
    ) -> None:
        """Place one nodule per entry of ``kinds``, log-uniform in ``diameter_range`` cut to what fits.

        Raises:
            ValueError: the anatomy has no lungs, or its lungs are too small for the nodules.
        """
        if not kinds:
            return
        if not self.chest:
            raise ValueError("nodules need lungs: a phantom with lungs='none' cannot hold nodules")
        h = self._min_voxel
        pool = self.sample_lung_points(rng, 4000, in_box=True)
        if len(pool) == 0:
            raise ValueError("this field of view holds no lung to put a nodule in")
        sizes = {s: self.lung_hw[s] for s in self.sides}
        box_z = self.box_hi[2] - self.box_lo[2]
        d_fit = 0.9 * min(min(sizes.values()), 0.5 * self.bc, 0.2 * self.z_len, 0.6 * box_z)
        d_min = 2.0 * h  # a nodule spans at least two voxels in-plane
        if d_fit < d_min:
            raise ValueError(
                f"the lungs of this field of view ({self.box_hi[0] - self.box_lo[0]:.0f} mm wide) are too small "
                "for a nodule of two voxels; use more voxels or a larger spacing"
            )
        big_vessels = [v for v in self.vessels if v.r0 >= max(0.6, 0.7 * h)]
        for kind in kinds:
            # a part-solid nodule has a visible solid core and a ground-glass rim: it is seldom under
            # 6 mm; pure ground glass seldom under 5 mm. The range is cut to what fits in these lungs.
            hi_d = max(min(diameter_range[1], d_fit), d_min)
            lo_d = min(
                max(diameter_range[0], {"part_solid": 6.0, "ground_glass": 5.0}.get(kind, 0.0), d_min), hi_d
            )
            d = float(np.exp(rng.uniform(np.log(lo_d), np.log(hi_d))))
            for attempt in range(10):
                # last resort in a tiny field of view: let a juxtavascular nodule touch a thin vessel
                vessels = big_vessels if attempt < 8 or kind != "juxtavascular" else self.vessels
                spec = self._try_place(rng, kind, 0.5 * d, pool, vessels, snap)
                if spec is not None:
                    break
                d = max(0.85 * d, d_min)
            else:
                raise ValueError(
                    f"could not fit a {kind} nodule in the lungs of this phantom (field of view too small?)"
                )
            self._nodule_specs.append(spec)
            self.nodules.append(spec.nodule)

    def _fits(self, centre: np.ndarray, radius: float, margin, dirs: np.ndarray = DIRS26) -> bool:
        # margin: mm, or mm per axis (a voxel-based margin on an anisotropic grid)
        probe = np.concatenate([centre[None], centre + radius * dirs + np.asarray(margin) * dirs])
        return bool(self.lung_points_mask(probe).all())

    def _clear_of_nodules(self, centre: np.ndarray, radius: float, margin: float) -> bool:
        for s in self._nodule_specs:
            if np.linalg.norm(s.center - centre) < s.radius * (1 + 0.15) + radius * 1.15 + margin:
                return False
        return True

    def _clear_of_vessels(self, centre: np.ndarray, radius: float, vessels: list[Tube]) -> bool:
        for v in vessels:
            if v.signed(*centre, grow=radius) < 0:
                return False
        return True

    def _try_place(self, rng, kind, radius, pool, big_vessels, snap: Grid) -> NoduleSpec | None:
        h = self._min_voxel
        margin = max(1.5 * h, 0.5)
        # intrapulmonary kinds keep a voxel and a half of lung around them along every axis
        clear = np.maximum(1.5 * self._voxel, 0.5)
        for attempt in range(60):
            if attempt == 40:
                clear = 0.6 * self._voxel  # a crowded or tiny lung: settle for less
            p = pool[rng.integers(len(pool))]
            if kind == "juxtapleural":
                centre = self._juxtapleural_centre(rng, p, radius)
            elif kind == "juxtavascular":
                centre = self._juxtavascular_centre(rng, radius, big_vessels)
            else:
                centre = p
            if centre is None:
                continue
            centre = snap_to_grid(centre, snap)
            if np.any(centre - radius < self.box_lo) or np.any(centre + radius > self.box_hi):
                continue  # the whole nodule must be in the image
            if not self._clear_of_nodules(centre, radius, margin):
                continue
            if kind in ("solid", "part_solid", "ground_glass"):
                if not self._fits(centre, 1.1 * radius, clear):
                    continue
                if not self._clear_of_vessels(
                    centre, radius + margin, [v for v in big_vessels if v.r0 > 1.5 * h]
                ):
                    continue
            elif kind == "juxtavascular":
                if not self._fits(centre, 1.1 * radius, clear):
                    continue
            return self._nodule_spec(rng, kind, centre, radius)
        return None

    def _juxtapleural_centre(self, rng, p: np.ndarray, radius: float) -> np.ndarray | None:
        # march outwards (away from the mediastinum, in the axial plane) to the costal pleura
        outward = unit(np.array([p[0] - self.xm, (p[1] - self.cy) * rng.uniform(0.3, 1.5), 0.0]))
        step = 0.5 * self._min_voxel
        n_steps = int(2 * self.ac / step) + 2
        ray = p[None] + step * np.arange(n_steps)[:, None] * outward[None]
        inside = self.lung_points_mask(ray)
        if not inside[0] or inside.all():
            return None
        boundary = ray[int(np.argmin(inside)) - 1]
        # must be the chest wall there, not mediastinum or diaphragm
        beyond = boundary + 3 * step * outward
        t = self._t(beyond[2])
        if self.cavity_r2(beyond[0], beyond[1]) < (0.93 * self.cavity_scale(t)) ** 2:
            return None
        # inward normal: mean direction to the lung points around the boundary point
        probe = boundary + 3 * step * DIRS26
        ins = self.lung_points_mask(probe)
        if ins.sum() < 3:
            return None
        normal = unit(DIRS26[ins].mean(axis=0))
        centre = boundary + normal * 0.85 * radius
        # most of it in the lung, and its outer side against the wall
        inner = DIRS26[DIRS26 @ normal > 0.2]
        if not self.lung_points_mask(centre[None] + 0.95 * radius * inner).all():
            return None
        if self.lung_points_mask((centre + 1.2 * radius * -normal)[None])[0]:
            return None
        return centre

    def _juxtavascular_centre(self, rng, radius: float, vessels: list[Tube]) -> np.ndarray | None:
        if not vessels:
            return None
        v = vessels[rng.integers(len(vessels))]
        s = rng.uniform(0.2, 0.8)
        q = v.p0 + s * (v.p1 - v.p0)
        axis = unit(v.p1 - v.p0)
        e = unit(np.cross(axis, rng.standard_normal(3)))
        r_v = v.r0 + s * (v.r1 - v.r0)
        # touching: the sphere overlaps the vessel wall by a fraction of a voxel
        return q + e * (r_v + 0.9 * radius)

    def _nodule_spec(self, rng, kind: str, centre: np.ndarray, radius: float) -> NoduleSpec:
        nodule = Nodule(tuple(float(c) for c in centre), float(round(2 * radius, 4)), kind)
        lobe = rng.standard_normal((3, 3))
        lobe /= np.linalg.norm(lobe, axis=1, keepdims=True)
        return NoduleSpec(
            nodule=nodule,
            center=np.asarray(centre, dtype=float),
            radius=float(round(2 * radius, 4)) / 2,
            hu_solid=float(rng.uniform(0, 70)),
            hu_ggo=float(rng.uniform(-620, -420)),
            core_frac=float(rng.uniform(0.45, 0.65)),
            lobe_dirs=lobe,
            lobe_amp=float(rng.uniform(0.0, 0.15)) if kind != "ground_glass" else 0.1,
        )
