"""The mediastinum of the anatomy: heart, great vessels, pulmonary arteries and the lung hila.

:class:`MediastinumMixin` lays out, in a chest phantom, the heart (an ellipsoid on the left diaphragm
dome, with the left ventricle's wall as myocardium), the aorta (ascending, arch, descending), the
superior vena cava, the pulmonary trunk and the arteries to each hilum, and the carina's height. The
hila are where the vessel and airway trees of each lung start.
"""

from __future__ import annotations

import numpy as np

from lungcad_transforms.apps.phantoms.shapes import Tube, ellipsoid_q

__all__ = []


class MediastinumMixin:
    """Mediastinal layout of an anatomy (needs the trunk and the lungs' shape: domes, apices, midline)."""

    def _layout_mediastinum(self, rng: np.random.Generator) -> None:
        ac, bc, cy = self.ac, self.bc, self.cy
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
        self.great_vessels: list[Tube] = [
            # ascending aorta, arch, descending aorta down through the diaphragm
            Tube(self._pt(self.xm - 0.02 * ac, cy - 0.18 * bc, t_heart_top - 0.1), self._pt(self.xm - 0.06 * ac, cy - 0.28 * bc, t_arch - 0.06), ra, ra),
            Tube(self._pt(self.xm - 0.06 * ac, cy - 0.28 * bc, t_arch - 0.06), self._pt(self.xm + 0.02 * ac, cy - 0.05 * bc, t_arch), ra, ra),
            Tube(self._pt(self.xm + 0.02 * ac, cy - 0.05 * bc, t_arch), self._pt(dax, day, t_arch - 0.07), ra, 0.9 * ra),
            Tube(self._pt(dax, day, t_arch - 0.07), self._pt(dax, day, self.t_dome["left"] - 0.05), 0.9 * ra, 0.85 * ra),
            # superior vena cava, right of the ascending aorta
            Tube(self._pt(self.xm - 0.2 * ac, cy - 0.2 * bc, t_heart_top - 0.06), self._pt(self.xm - 0.19 * ac, cy - 0.15 * bc, 1.2), 0.05 * self.a, 0.05 * self.a),
        ]  # fmt: skip
        # pulmonary trunk from the right ventricle up to its bifurcation, then to each hilum
        bif = self._pt(self.xm + 0.06 * ac, cy - 0.08 * bc, t_car - 0.03)
        self.great_vessels.append(
            Tube(
                self._pt(self.xm + 0.15 * ac, cy - 0.38 * bc, t_heart_top - 0.08),
                bif,
                0.075 * self.a,
                0.07 * self.a,
            )
        )
        self.hilum: dict[str, np.ndarray] = {}
        self.hilum_low: dict[str, np.ndarray] = {}
        # the lungs present (a missing lung has a hilum, but no pulmonary artery runs to it)
        self.sides = [s for s in ("right", "left") if self.lungs in ("both", s)]
        for side in ("right", "left"):
            sign = -1.0 if side == "right" else 1.0
            hx = self.xm + sign * (self.wm + 0.1 * ac)
            self.hilum[side] = self._pt(hx, cy + 0.02 * bc, t_car - 0.05)
            self.hilum_low[side] = self._pt(hx - sign * 0.02 * ac, cy + 0.15 * bc, t_car - 0.14)
            if side in self.sides:
                self.great_vessels.append(
                    Tube(
                        bif,
                        self.hilum[side] - sign * np.array([0.04 * ac, 0, 0]),
                        0.055 * self.a,
                        0.05 * self.a,
                    )
                )

    def heart_q(self, x, y, z, centre=None, radii=None, grow: float = 1.0):
        """Ellipsoid form of the heart (or of another ``centre``/``radii``, e.g. the left ventricle)."""
        c = self.heart_c if centre is None else centre
        r = (self.heart_r if radii is None else radii) * grow
        return ellipsoid_q(x, y, z, c, r)
