"""The trunk of the anatomy: body outline, body wall, patient table, thoracic cavity and spine position.

:class:`BodyMixin` lays out what every phantom has, chest or abdomen: a superelliptic trunk (flatter at
the back) with skin, fat and muscle layers, the rib layer and the cavity inside it, the patient table
under the back, the spine, the mediastinal midline and the paths of the aorta and oesophagus. It also
holds the analytic regions that the lungs and the renderer query, as functions of world coordinates.
"""

from __future__ import annotations

import numpy as np

__all__ = []


# Size of an adult chest in real millimetres, used to scale the macro anatomy to the field of view.
_REAL_BODY_HALF_WIDTH_MM = 170.0


class BodyMixin:
    """Trunk layout of an anatomy and its analytic regions (broadcastable: open grids or point lists).

    ``t`` is the relative height in the chest's z frame (0 at ``z_lo``, 1 at ``z_lo + z_len``).
    """

    def _layout_body(self, rng: np.random.Generator) -> None:
        lo, hi = self.box_lo, self.box_hi
        centre = 0.5 * (lo + hi)
        hx, hy = 0.5 * (hi[0] - lo[0]), 0.5 * (hi[1] - lo[1])
        a = hx * rng.uniform(0.80, 0.90)
        # z frame of the macro anatomy: the chest (upper abdomen to lung apices) is about 1.8 body
        # half-widths long. A slab up to 3 times longer is filled by a chest stretched in z (the body
        # only fills a ~10 cm field of view in a 128^3 volume at real in-plane spacing, so the lungs
        # would otherwise fill only a few slices); a longer one shows the abdomen below the chest;
        # a short one shows the middle of the chest.
        box_len = hi[2] - lo[2]
        if self.chest:
            real_len = 1.8 * a
            self.z_len = float(np.clip(box_len, 0.6 * real_len, 3.0 * real_len))
            self.z_lo = hi[2] - self.z_len + 0.45 * max(0.0, self.z_len - box_len)
        else:
            self.z_lo, self.z_len = lo[2], box_len
        ratio = rng.uniform(0.62, 0.74) if self.chest else rng.uniform(0.70, 0.82)
        # the body and the table must fit in y: leave room below the back for an air gap and the table
        gap = max(5.0 * self._min_voxel, 0.05 * a)
        table_t = max(6 * self._min_voxel, 0.09 * a)
        b = min(a * ratio, 0.5 * (2 * hy * 0.94 - gap - table_t))
        free = 2 * hy - 2 * b - gap - table_t
        by = lo[1] + free * rng.uniform(0.30, 0.45) + b
        self.a, self.b = a, b
        self.bx = centre[0] + hx * rng.uniform(-0.02, 0.02)
        self.by = by
        self.scale = a / _REAL_BODY_HALF_WIDTH_MM  # macro-anatomy mm per real mm
        self.p_ant = rng.uniform(2.0, 2.3)
        self.p_post = rng.uniform(2.7, 3.4)
        self.skin = max(0.8 * self._min_voxel, 2.0 * self.scale) / a
        self.fat = rng.uniform(0.035, 0.12)
        self.muscle = rng.uniform(0.05, 0.08)
        self.rib = 0.055
        # table: two carbon-fibre sheets around a foam core, curving up a little at the sides
        self.table_top = by + b + gap
        self.table_t = table_t
        self.table_sheet = max(1.2 * self._min_voxel, 0.012 * a)
        self.table_half_w = 0.95 * hx
        self.table_curve = rng.uniform(0.3, 0.6) * gap / (0.8 * a) ** 2
        # thoracic / abdominal cavity: inside fat, muscle and rib layers, with the back muscles thicker
        wall = self.fat + self.muscle + self.rib
        y_ant = by - b * (1 - wall)
        y_post = by + b * (1 - wall - rng.uniform(0.10, 0.16))
        self.cx = self.bx
        self.cy = 0.5 * (y_ant + y_post)
        self.ac = a * (1 - wall)
        self.bc = 0.5 * (y_post - y_ant)
        # spine, at the back of the cavity
        self.r_vb = 0.105 * a
        self.spine_x = self.bx
        self.spine_y = self.cy + self.bc - 0.45 * self.r_vb
        self.vert_period = rng.uniform(0.075, 0.09)
        self.vert_phase = rng.uniform(0, 1)
        self.rib_period = self.vert_period
        self.rib_phase = self.vert_phase + 0.5
        self.rib_drop = rng.uniform(2.6, 3.4) * self.rib_period
        self.rib_width = rng.uniform(0.28, 0.36)
        self.xm = self.cx + 0.02 * self.ac  # mediastinal midline, slightly left
        # descending aorta, left and in front of the vertebral body; inferior vena cava on the right
        self.r_aorta = 0.08 * a
        self.desc_aorta_xy = np.array([self.spine_x + 1.05 * self.r_vb, self.spine_y - 1.05 * self.r_vb])
        self.r_es = 0.035 * a
        self.es_xy = np.array([self.spine_x + 0.35 * self.r_vb, self.spine_y - 1.25 * self.r_vb - self.r_es])

    def _t_to_z(self, t: float) -> float:
        return float(self.z_lo + t * self.z_len)

    def _pt(self, x: float, y: float, t: float) -> np.ndarray:
        return np.array([x, y, self._t_to_z(t)])

    def _t(self, z):
        return (z - self.z_lo) * (1.0 / self.z_len)

    def body_rho(self, x, y):
        """Superelliptic radius of the trunk outline: <= 1 inside the skin."""
        u = np.abs((x - self.bx) * (1.0 / self.a))
        v = (y - self.by) * (1.0 / self.b)
        p = np.where(v > 0, self.p_post, self.p_ant)
        return (u**p + np.abs(v) ** p) ** (1.0 / p)

    def cavity_scale(self, t):
        """Relative size of the cavity's cross-section at height ``t``."""
        # the upper thorax is narrower than its base
        if not self.chest:
            return np.ones_like(t)
        return 1.0 - 0.22 * np.clip((t - 0.55) / 0.45, 0.0, 1.0) ** 2

    def cavity_r2(self, x, y):
        """Squared elliptic radius of the cavity: inside where <= ``cavity_scale(t) ** 2``."""
        u = (x - self.cx) * (1.0 / self.ac)
        v = (y - self.cy) * (1.0 / self.bc)
        return u * u + v * v

    def spine_zone(self, x, y):
        """Around the vertebral body and behind it: never lung."""
        dx, dy = x - self.spine_x, y - self.spine_y
        near_body = dx * dx + dy * dy < (1.3 * self.r_vb) ** 2
        behind = (np.abs(dx) < 0.6 * self.r_vb) & (dy > 0)
        return near_body | behind
