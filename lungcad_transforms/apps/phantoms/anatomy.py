"""The phantom's anatomy: body, lungs, airways, vessels and nodules, before rendering."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lungcad_transforms.apps.phantoms.grid import (
    _DIRS26,
    _Grid,
    _grow_tree,
    _NoduleSpec,
    _snap,
    _Tube,
    _unit,
)
from lungcad_transforms.apps.phantoms.render import _render, _Rendered
from lungcad_transforms.apps.phantoms.tissues import (
    _REAL_BODY_HALF_WIDTH_MM,
    Nodule,
)

__all__ = ["Anatomy"]


class Anatomy:
    """The patient of a phantom: every structure in LPS world millimetres, independent of any voxel grid.

    Built by :func:`make_anatomy` (the phantom makers call it); rendering it on different grids gives
    co-registered CT, PET and MR images of one patient. Attributes of interest: ``nodules`` (list of
    :class:`Nodule`), ``box_lo``/``box_hi`` (the world box it fills), ``lungs`` ("both", "left", "right" or
    "none"), ``contrast`` (whether the CT is contrast-enhanced).
    """

    def __init__(
        self,
        rng: np.random.Generator,
        box_lo: np.ndarray,
        box_hi: np.ndarray,
        lungs: str,
        contrast: bool,
        voxel_mm: Sequence[float],
    ) -> None:
        self.box_lo = np.asarray(box_lo, dtype=float)
        self.box_hi = np.asarray(box_hi, dtype=float)
        self.lungs = lungs
        self.contrast = bool(contrast)
        self.chest = lungs != "none"
        self.seed = 0
        self.nodules: list[Nodule] = []
        self._nodule_specs: list[_NoduleSpec] = []
        self.vessels: list[_Tube] = []
        self.airway_tree: list[_Tube] = []
        self.fissures: list[tuple[str, np.ndarray, np.ndarray, tuple | None]] = []
        self._voxel = np.asarray(voxel_mm, dtype=float)
        self._min_voxel = float(min(self._voxel[0], self._voxel[1]))
        self._layout_body(rng)
        if self.chest:
            self._layout_chest(rng)
        else:
            self._layout_abdomen(rng, self.box_hi[2], self.box_hi[2] - self.box_lo[2])

    # ---- layout --------------------------------------------------------------------------------------

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

    def _layout_chest(self, rng: np.random.Generator) -> None:
        ac, bc, cx, cy = self.ac, self.bc, self.cx, self.cy
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
        t_car = (
            self.t_dome["right"]
            + 0.5 * (min(self.t_top, 1.0) - self.t_dome["right"])
            + rng.uniform(-0.03, 0.03)
        )
        self.t_carina = t_car
        # heart: an ellipsoid sitting on the diaphragm, anterior and to the left
        self.heart_c = np.array([self.xm + 0.2 * ac, cy - 0.22 * bc, self._t_to_z(self.t_dome["left"] + 0.1)])
        self.heart_r = np.array([0.36 * ac, 0.5 * bc, 0.16 * self.z_len]) * rng.uniform(0.92, 1.08)
        # left ventricle inside it (left, posterior, low): its wall is the myocardium
        self.lv_c = self.heart_c + np.array([0.25, 0.1, -0.15]) * self.heart_r
        self.lv_r = 0.5 * self.heart_r
        t_heart_top = self.t_dome["left"] + 0.1 + 0.17
        t_arch = min(t_car + 0.1, 0.95)
        ra = self.r_aorta
        dax, day = self.desc_aorta_xy
        self.great_vessels: list[_Tube] = [
            # ascending aorta, arch, descending aorta down through the diaphragm
            _Tube(self._pt(self.xm - 0.02 * ac, cy - 0.18 * bc, t_heart_top - 0.1), self._pt(self.xm - 0.06 * ac, cy - 0.28 * bc, t_arch - 0.06), ra, ra),
            _Tube(self._pt(self.xm - 0.06 * ac, cy - 0.28 * bc, t_arch - 0.06), self._pt(self.xm + 0.02 * ac, cy - 0.05 * bc, t_arch), ra, ra),
            _Tube(self._pt(self.xm + 0.02 * ac, cy - 0.05 * bc, t_arch), self._pt(dax, day, t_arch - 0.07), ra, 0.9 * ra),
            _Tube(self._pt(dax, day, t_arch - 0.07), self._pt(dax, day, self.t_dome["left"] - 0.05), 0.9 * ra, 0.85 * ra),
            # superior vena cava, right of the ascending aorta
            _Tube(self._pt(self.xm - 0.2 * ac, cy - 0.2 * bc, t_heart_top - 0.06), self._pt(self.xm - 0.19 * ac, cy - 0.15 * bc, 1.2), 0.05 * self.a, 0.05 * self.a),
        ]  # fmt: skip
        # pulmonary trunk from the right ventricle up to its bifurcation, then to each hilum
        bif = self._pt(self.xm + 0.06 * ac, cy - 0.08 * bc, t_car - 0.03)
        self.great_vessels.append(
            _Tube(
                self._pt(self.xm + 0.15 * ac, cy - 0.38 * bc, t_heart_top - 0.08),
                bif,
                0.075 * self.a,
                0.07 * self.a,
            )
        )
        self.hilum: dict[str, np.ndarray] = {}
        self.hilum_low: dict[str, np.ndarray] = {}
        sides = [s for s in ("right", "left") if self.lungs in ("both", s)]
        for side in ("right", "left"):
            sign = -1.0 if side == "right" else 1.0
            hx = self.xm + sign * (self.wm + 0.1 * ac)
            self.hilum[side] = self._pt(hx, cy + 0.02 * bc, t_car - 0.05)
            self.hilum_low[side] = self._pt(hx - sign * 0.02 * ac, cy + 0.15 * bc, t_car - 0.14)
            if side in sides:
                self.great_vessels.append(
                    _Tube(
                        bif,
                        self.hilum[side] - sign * np.array([0.04 * ac, 0, 0]),
                        0.055 * self.a,
                        0.05 * self.a,
                    )
                )
        # trachea and main bronchi: air tubes with soft-tissue walls
        r_tr = 0.055 * self.a
        self.trachea_r = r_tr
        self.wall_frac = 0.18
        tx, ty = self.xm - 0.03 * ac, self.es_xy[1] - self.r_es - 1.15 * r_tr
        carina = self._pt(tx, ty + 0.1 * r_tr, t_car)
        self.airways: list[_Tube] = [
            _Tube(self._pt(tx, ty, 1.2), carina, r_tr, r_tr)
        ]  # trachea, main bronchi
        self.airway_roots: dict[str, tuple[np.ndarray, float]] = {}
        for side in sides:
            r_main = (0.72 if side == "right" else 0.65) * r_tr
            end = self.hilum[side] + np.array([0.0, 0.0, 0.02 * self.z_len])
            self.airways.append(_Tube(carina, end, r_main, 0.95 * r_main))
            self.airway_roots[side] = (end, 0.9 * r_main)
        self.sides = sides
        # interlobar fissures: an oblique one in each lung (from high at the back to low at the front)
        # and the horizontal fissure of the right lung, in front of the oblique one
        self.fissures = []
        for side in sides:
            p_post = self._pt(self.lung_x[side], cy + bc, self.t_apex0 - rng.uniform(0.0, 0.1))
            p_ant = self._pt(self.lung_x[side], cy - bc, self.t_dome[side] + rng.uniform(0.0, 0.06))
            # seen in an axial slice the fissure runs from posteromedial to anterolateral
            sign = -1.0 if side == "right" else 1.0
            swing = np.deg2rad(rng.uniform(15, 35))
            across = np.array([np.cos(swing), sign * np.sin(swing), rng.uniform(-0.1, 0.1)])
            normal = _unit(np.cross(p_ant - p_post, across))
            front = self._pt(self.lung_x[side], cy - bc, t_car)
            if normal @ (front - p_post) < 0:
                normal = -normal
            self.fissures.append((side, p_post, normal, None))
            if side == "right":
                p_h = self._pt(self.lung_x[side], cy, t_car - rng.uniform(0.03, 0.08))
                n_h = _unit(np.array([0.0, rng.uniform(-0.15, 0.15), 1.0]))
                self.fissures.append((side, p_h, n_h, (p_post, normal)))
        # the abdomen below the diaphragm, at the chest's scale
        self._layout_abdomen(rng, self._t_to_z(self.t_dome["right"] + 0.04), self.z_len)

    def _layout_abdomen(self, rng: np.random.Generator, z_top: float, length: float) -> None:
        """Abdominal organs in a frame whose top (``ta`` = 1) is the liver dome and whose bottom
        (``ta`` = 0) is the pelvis."""
        ac, bc, cx, cy = self.ac, self.bc, self.cx, self.cy
        self.abd_lo, self.abd_len = z_top - length, length

        def pa(x: float, y: float, ta: float) -> np.ndarray:
            return np.array([x, y, self.abd_lo + ta * length])

        self.liver_c, self.liver_r = (
            pa(cx - 0.3 * ac, cy - 0.05 * bc, 0.9),
            np.array([0.72 * ac, 0.95 * bc, 0.4 * length]),
        )
        self.spleen_c, self.spleen_r = (
            pa(cx + 0.62 * ac, cy + 0.35 * bc, 0.85),
            np.array([0.24 * ac, 0.4 * bc, 0.18 * length]),
        )
        self.stomach_c, self.stomach_r = (
            pa(cx + 0.35 * ac, cy - 0.35 * bc, 0.86),
            np.array([0.32 * ac, 0.35 * bc, 0.15 * length]),
        )
        self.kidney_c = [
            pa(self.spine_x + s * 2.2 * self.r_vb, self.spine_y - 0.2 * self.r_vb, 0.5) for s in (-1, 1)
        ]
        self.kidney_r = np.array([0.85 * self.r_vb, 1.1 * self.r_vb, 0.16 * length])
        self.bladder_c, self.bladder_r = (
            pa(cx, cy - 0.35 * bc, 0.04),
            np.array([0.3 * ac, 0.35 * bc, 0.1 * length]),
        )
        dax, day = self.desc_aorta_xy
        ivc_x = self.spine_x - 1.1 * self.r_vb
        top = self.box_hi[2] + 10.0 if not self.chest else z_top
        self.abd_vessels = [
            _Tube(pa(dax - 0.4 * self.r_vb, day, 0.15), np.array([dax - 0.4 * self.r_vb, day, top]), 0.065 * self.a, 0.07 * self.a),
            _Tube(pa(ivc_x, day, 0.15), np.array([ivc_x, day, top]), 0.06 * self.a, 0.06 * self.a),
        ]  # fmt: skip
        if not self.chest:
            self.sides = []
            self.great_vessels = []
            self.airways = []
            self.fissures = []
        # bowel loops: random walks through the anterior abdomen; some hold gas (with an air-fluid
        # level: gas rises anteriorly in a supine patient), the others fluid
        self.bowel: list[tuple[_Tube, float]] = []
        for _ in range(int(rng.integers(18, 28))):
            r = self.a * rng.uniform(0.06, 0.12)
            p = pa(cx + ac * rng.uniform(-0.6, 0.6), cy + bc * rng.uniform(-0.7, 0.2), rng.uniform(0.1, 0.62))
            level = (
                rng.uniform(-1.0, 1.0) if rng.random() < 0.55 else -2.0
            )  # fraction of the lumen that is gas
            direction = _unit(rng.standard_normal(3))
            for _ in range(int(rng.integers(3, 6))):
                direction = _unit(direction + 0.9 * rng.standard_normal(3))
                q = p + direction * r * rng.uniform(2.0, 4.0)
                q[0] = np.clip(q[0], cx - 0.75 * ac, cx + 0.75 * ac)
                q[1] = np.clip(q[1], cy - 0.8 * bc, cy + 0.35 * bc)
                q[2] = min(q[2], self.abd_lo + 0.65 * length)
                self.bowel.append((_Tube(p, q, r, r), level))
                p = q

    def _ta(self, z):
        return (z - self.abd_lo) * (1.0 / self.abd_len)

    # ---- analytic regions (broadcastable: open grids or flat point lists) ---------------------------

    def _t(self, z):
        return (z - self.z_lo) * (1.0 / self.z_len)

    def body_rho(self, x, y):
        u = np.abs((x - self.bx) * (1.0 / self.a))
        v = (y - self.by) * (1.0 / self.b)
        p = np.where(v > 0, self.p_post, self.p_ant)
        return (u**p + np.abs(v) ** p) ** (1.0 / p)

    def cavity_scale(self, t):
        # the upper thorax is narrower than its base
        if not self.chest:
            return np.ones_like(t)
        return 1.0 - 0.22 * np.clip((t - 0.55) / 0.45, 0.0, 1.0) ** 2

    def cavity_r2(self, x, y):
        u = (x - self.cx) * (1.0 / self.ac)
        v = (y - self.cy) * (1.0 / self.bc)
        return u * u + v * v

    def spine_zone(self, x, y):
        dx, dy = x - self.spine_x, y - self.spine_y
        near_body = dx * dx + dy * dy < (1.3 * self.r_vb) ** 2
        behind = (np.abs(dx) < 0.6 * self.r_vb) & (dy > 0)
        return near_body | behind

    def diaphragm_t(self, x, y, side: str):
        q = ((x - self.lung_x[side]) / (1.1 * self.lung_hw[side])) ** 2 + (
            (y - (self.cy - 0.1 * self.bc)) / self.bc
        ) ** 2
        return self.t_dome[side] - self.dome_h * q

    def apex_q(self, x, y, side: str):
        return (np.abs(x - self.lung_x[side]) / self.lung_hw[side]) ** 4 + (
            np.abs(y - self.cy) / (1.05 * self.bc)
        ) ** 4

    def apex_limit(self, t):
        tau = np.clip((t - self.t_apex0) / (self.t_top - self.t_apex0), 0.0, 1.0)
        return np.maximum(1.0 - tau * tau, 0.0) ** 2

    def heart_q(self, x, y, z, centre=None, radii=None, grow: float = 1.0):
        c = self.heart_c if centre is None else centre
        r = (self.heart_r if radii is None else radii) * grow
        return ((x - c[0]) / r[0]) ** 2 + ((y - c[1]) / r[1]) ** 2 + ((z - c[2]) / r[2]) ** 2

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

    def _lung_exclusions(self) -> list[_Tube]:
        grow = 0.04 * self.a
        tubes = [_Tube(t.p0, t.p1, t.r0 + grow, t.r1 + grow) for t in self.great_vessels]
        tubes += [
            _Tube(t.p0, t.p1, t.r0 * (1 + self.wall_frac) + grow, t.r1 * (1 + self.wall_frac) + grow)
            for t in self.airways
        ]
        return tubes

    # ---- trees and nodules ---------------------------------------------------------------------------

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

    def grow_trees(self, rng: np.random.Generator) -> None:
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
                self.vessels += _grow_tree(rng, pts, root, r0, r_vessel_min)
            root, r0 = self.airway_roots[side]
            pts = self.sample_lung_points(rng, 600, side)
            if len(pts) >= 20:
                r_air_min = max(0.6, 1.1 * h)
                self.airway_tree += _grow_tree(rng, pts, root, r0, r_air_min, length_frac=0.4)

    def place_nodules(
        self,
        rng: np.random.Generator,
        kinds: Sequence[str],
        diameter_range: tuple[float, float],
        snap: _Grid,
    ) -> None:
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

    def _fits(self, centre: np.ndarray, radius: float, margin, dirs: np.ndarray = _DIRS26) -> bool:
        # margin: mm, or mm per axis (a voxel-based margin on an anisotropic grid)
        probe = np.concatenate([centre[None], centre + radius * dirs + np.asarray(margin) * dirs])
        return bool(self.lung_points_mask(probe).all())

    def _clear_of_nodules(self, centre: np.ndarray, radius: float, margin: float) -> bool:
        for s in self._nodule_specs:
            if np.linalg.norm(s.center - centre) < s.radius * (1 + 0.15) + radius * 1.15 + margin:
                return False
        return True

    def _clear_of_vessels(self, centre: np.ndarray, radius: float, vessels: list[_Tube]) -> bool:
        for v in vessels:
            if v.signed(*centre, grow=radius) < 0:
                return False
        return True

    def _try_place(self, rng, kind, radius, pool, big_vessels, snap: _Grid) -> _NoduleSpec | None:
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
            centre = _snap(centre, snap)
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
        outward = _unit(np.array([p[0] - self.xm, (p[1] - self.cy) * rng.uniform(0.3, 1.5), 0.0]))
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
        probe = boundary + 3 * step * _DIRS26
        ins = self.lung_points_mask(probe)
        if ins.sum() < 3:
            return None
        normal = _unit(_DIRS26[ins].mean(axis=0))
        centre = boundary + normal * 0.85 * radius
        # most of it in the lung, and its outer side against the wall
        inner = _DIRS26[_DIRS26 @ normal > 0.2]
        if not self.lung_points_mask(centre[None] + 0.95 * radius * inner).all():
            return None
        if self.lung_points_mask((centre + 1.2 * radius * -normal)[None])[0]:
            return None
        return centre

    def _juxtavascular_centre(self, rng, radius: float, vessels: list[_Tube]) -> np.ndarray | None:
        if not vessels:
            return None
        v = vessels[rng.integers(len(vessels))]
        s = rng.uniform(0.2, 0.8)
        q = v.p0 + s * (v.p1 - v.p0)
        axis = _unit(v.p1 - v.p0)
        e = _unit(np.cross(axis, rng.standard_normal(3)))
        r_v = v.r0 + s * (v.r1 - v.r0)
        # touching: the sphere overlaps the vessel wall by a fraction of a voxel
        return q + e * (r_v + 0.9 * radius)

    def _nodule_spec(self, rng, kind: str, centre: np.ndarray, radius: float) -> _NoduleSpec:
        nodule = Nodule(tuple(float(c) for c in centre), float(round(2 * radius, 4)), kind)
        lobe = rng.standard_normal((3, 3))
        lobe /= np.linalg.norm(lobe, axis=1, keepdims=True)
        return _NoduleSpec(
            nodule=nodule,
            center=np.asarray(centre, dtype=float),
            radius=float(round(2 * radius, 4)) / 2,
            hu_solid=float(rng.uniform(0, 70)),
            hu_ggo=float(rng.uniform(-620, -420)),
            core_frac=float(rng.uniform(0.45, 0.65)),
            lobe_dirs=lobe,
            lobe_amp=float(rng.uniform(0.0, 0.15)) if kind != "ground_glass" else 0.1,
        )

    # ---- rendering -----------------------------------------------------------------------------------

    def render(self, grid: _Grid) -> _Rendered:
        """Rasterise the anatomy on a grid: tissue map, partial-volume fractions and ground truth."""
        return _render(self, grid)
