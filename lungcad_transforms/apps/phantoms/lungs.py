"""The lungs of the anatomy: their shape, the central airways, the fissures, and lung membership.

:class:`LungsMixin` lays out each lung's extent (diaphragm domes, apices, the mediastinal band between
them), the trachea and main bronchi, and the interlobar fissures, and answers "is this point in a
lung?" with the same geometry the renderer uses for the ground-truth ``lungs``: inside the thoracic
cavity, outside the mediastinum, the spine zone and the heart, above the diaphragm, below the apex, and
clear of the great vessels and central airways. Random points in the lungs feed the vessel and airway
trees and the nodule placement.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lungcad_transforms.apps.phantoms.shapes import Tube, unit

__all__ = []


class LungsMixin:
    """Lung layout and lung regions of an anatomy (broadcastable: open grids or flat point lists)."""

    # ---- layout --------------------------------------------------------------------------------------

    def _layout_lung_shape(self, rng: np.random.Generator) -> None:
        ac, cx = self.ac, self.cx
        self.t_dome = {"right": rng.uniform(0.13, 0.22)}
        self.t_dome["left"] = self.t_dome["right"] - rng.uniform(0.01, 0.04)
        self.dome_h = rng.uniform(0.10, 0.15)
        self.t_top = rng.uniform(0.97, 1.08)
        self.t_apex0 = self.t_top - rng.uniform(0.28, 0.36)
        self.wm = rng.uniform(0.13, 0.17) * ac
        self.med_phase = rng.uniform(0, 2 * np.pi, size=2)
        # each lung's centre line in x and half width, for the diaphragm domes and apices
        self.lung_x = {
            "right": 0.5 * (cx - ac + self.xm - self.wm),
            "left": 0.5 * (cx + ac + self.xm + self.wm),
        }
        self.lung_hw = {
            "right": 0.5 * (self.xm - self.wm - (cx - ac)),
            "left": 0.5 * (cx + ac - self.xm - self.wm),
        }

    def _layout_airways(self) -> None:
        # trachea and main bronchi: air tubes with soft-tissue walls
        ac = self.ac
        r_tr = 0.055 * self.a
        self.trachea_r = r_tr
        self.wall_frac = 0.18
        tx, ty = self.xm - 0.03 * ac, self.es_xy[1] - self.r_es - 1.15 * r_tr
        carina = self._pt(tx, ty + 0.1 * r_tr, self.t_carina)
        self.airways: list[Tube] = [Tube(self._pt(tx, ty, 1.2), carina, r_tr, r_tr)]  # trachea, main bronchi
        self.airway_roots: dict[str, tuple[np.ndarray, float]] = {}
        for side in self.sides:
            r_main = (0.72 if side == "right" else 0.65) * r_tr
            end = self.hilum[side] + np.array([0.0, 0.0, 0.02 * self.z_len])
            self.airways.append(Tube(carina, end, r_main, 0.95 * r_main))
            self.airway_roots[side] = (end, 0.9 * r_main)

    def _layout_fissures(self, rng: np.random.Generator) -> None:
        # interlobar fissures: an oblique one in each lung (from high at the back to low at the front)
        # and the horizontal fissure of the right lung, in front of the oblique one
        bc, cy, t_car = self.bc, self.cy, self.t_carina
        self.fissures = []
        for side in self.sides:
            p_post = self._pt(self.lung_x[side], cy + bc, self.t_apex0 - rng.uniform(0.0, 0.1))
            p_ant = self._pt(self.lung_x[side], cy - bc, self.t_dome[side] + rng.uniform(0.0, 0.06))
            # seen in an axial slice the fissure runs from posteromedial to anterolateral
            sign = -1.0 if side == "right" else 1.0
            swing = np.deg2rad(rng.uniform(15, 35))
            across = np.array([np.cos(swing), sign * np.sin(swing), rng.uniform(-0.1, 0.1)])
            normal = unit(np.cross(p_ant - p_post, across))
            front = self._pt(self.lung_x[side], cy - bc, t_car)
            if normal @ (front - p_post) < 0:
                normal = -normal
            self.fissures.append((side, p_post, normal, None))
            if side == "right":
                p_h = self._pt(self.lung_x[side], cy, t_car - rng.uniform(0.03, 0.08))
                n_h = unit(np.array([0.0, rng.uniform(-0.15, 0.15), 1.0]))
                self.fissures.append((side, p_h, n_h, (p_post, normal)))

    # ---- regions -------------------------------------------------------------------------------------

    def diaphragm_t(self, x, y, side: str):
        """Relative height ``t`` of the diaphragm dome of ``side`` under (x, y)."""
        q = ((x - self.lung_x[side]) / (1.1 * self.lung_hw[side])) ** 2 + (
            (y - (self.cy - 0.1 * self.bc)) / self.bc
        ) ** 2
        return self.t_dome[side] - self.dome_h * q

    def apex_q(self, x, y, side: str):
        """Superelliptic radius of the lung apex of ``side`` (compare with :meth:`apex_limit`)."""
        return (np.abs(x - self.lung_x[side]) / self.lung_hw[side]) ** 4 + (
            np.abs(y - self.cy) / (1.05 * self.bc)
        ) ** 4

    def apex_limit(self, t):
        """How far :meth:`apex_q` may reach at height ``t``: 1 below the apex, narrowing to 0 at its top."""
        tau = np.clip((t - self.t_apex0) / (self.t_top - self.t_apex0), 0.0, 1.0)
        return np.maximum(1.0 - tau * tau, 0.0) ** 2

    def lung_points_mask(self, p: np.ndarray) -> np.ndarray:
        """Which of the LPS points (N, 3) lie in a lung (the same geometry as the rendered ``lungs``)."""
        x, y, z = p[:, 0], p[:, 1], p[:, 2]
        if not self.chest:
            return np.zeros(len(p), dtype=bool)
        t = self._t(z)
        out = self._lung_core(x, y, z, t, self.cavity_r2(x, y), self.cavity_scale(t))
        for tube in self._lung_exclusions():
            out &= tube.signed(x, y, z) > 0
        return out

    def _lung_core(self, x, y, z, t, cav_r2, cav_scale, sides: Sequence[str] | None = None):
        inside = cav_r2 <= cav_scale * cav_scale
        dx = x - self.xm
        # the mediastinum is widest in its middle third and narrows to the anterior junction line;
        # above the carina the great vessels widen it
        v = (y - self.cy) * (1.0 / self.bc)
        width = self.wm * (0.45 + 0.7 * np.exp(-(((v - 0.05) / 0.5) ** 2)))
        width = width * (1.0 + 0.15 * np.clip((t - self.t_carina) / 0.3, 0, 1))
        # mediastinal contours are never straight: a gentle random undulation
        p1, p2 = self.med_phase
        width = width * (
            1.0
            + 0.1 * np.sin(2 * np.pi * (1.3 * v + 2.1 * t) + p1)
            + 0.06 * np.sin(2 * np.pi * (2.7 * v - 1.7 * t) + p2)
        )
        band = np.abs(dx) < width
        inside = inside & ~band & ~self.spine_zone(x, y)
        inside = inside & (self.heart_q(x, y, z, grow=1.08) > 1.0)
        side_ok = np.zeros(np.broadcast_shapes(np.shape(inside)), dtype=bool)
        for side in self.sides if sides is None else sides:
            on_side = (dx < 0) if side == "right" else (dx >= 0)
            ok = (
                on_side & (t > self.diaphragm_t(x, y, side)) & (self.apex_q(x, y, side) <= self.apex_limit(t))
            )
            side_ok = side_ok | ok
        return inside & side_ok

    def _lung_exclusions(self) -> list[Tube]:
        # the great vessels and central airways with their walls and a margin: mediastinal, not lung
        grow = 0.04 * self.a
        tubes = [Tube(t.p0, t.p1, t.r0 + grow, t.r1 + grow) for t in self.great_vessels]
        tubes += [
            Tube(t.p0, t.p1, t.r0 * (1 + self.wall_frac) + grow, t.r1 * (1 + self.wall_frac) + grow)
            for t in self.airways
        ]
        return tubes

    def sample_lung_points(
        self, rng: np.random.Generator, n: int, side: str | None = None, in_box: bool = False
    ) -> np.ndarray:
        """Up to ``n`` random points in the lungs (one side, or only those inside the image box)."""
        lo = np.array([self.cx - self.ac, self.cy - self.bc, self.z_lo])
        hi = np.array([self.cx + self.ac, self.cy + self.bc, self.z_lo + self.z_len * min(self.t_top, 1.0)])
        if in_box:
            lo[2], hi[2] = max(lo[2], self.box_lo[2]), min(hi[2], self.box_hi[2])
        if side == "right":
            hi[0] = self.xm
        elif side == "left":
            lo[0] = self.xm
        pts = np.empty((0, 3))
        for _ in range(30):
            cand = rng.uniform(lo, hi, size=(4 * n, 3))
            pts = np.concatenate([pts, cand[self.lung_points_mask(cand)]])
            if len(pts) >= n:
                break
        return pts[:n]
