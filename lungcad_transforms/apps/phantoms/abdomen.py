"""The abdomen of the anatomy: liver, spleen, stomach, kidneys, bladder, aorta and cava, bowel loops.

:class:`AbdomenMixin` lays the organs out in a frame of their own (``ta`` = 1 at the liver dome, 0 at
the pelvis): below the diaphragm of a chest phantom, or filling the whole slab of a phantom without
lungs. The renderer paints them (see :mod:`~lungcad_transforms.apps.phantoms.organs`).
"""

from __future__ import annotations

import numpy as np

from lungcad_transforms.apps.phantoms.shapes import Tube, unit

__all__ = []


class AbdomenMixin:
    """Abdominal layout of an anatomy (needs the trunk: cavity and spine)."""

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
            Tube(pa(dax - 0.4 * self.r_vb, day, 0.15), np.array([dax - 0.4 * self.r_vb, day, top]), 0.065 * self.a, 0.07 * self.a),
            Tube(pa(ivc_x, day, 0.15), np.array([ivc_x, day, top]), 0.06 * self.a, 0.06 * self.a),
        ]  # fmt: skip
        if not self.chest:
            self.sides = []
            self.great_vessels = []
            self.airways = []
            self.fissures = []
        # bowel loops: random walks through the anterior abdomen; some hold gas (with an air-fluid
        # level: gas rises anteriorly in a supine patient), the others fluid
        self.bowel: list[tuple[Tube, float]] = []
        for _ in range(int(rng.integers(18, 28))):
            r = self.a * rng.uniform(0.06, 0.12)
            p = pa(cx + ac * rng.uniform(-0.6, 0.6), cy + bc * rng.uniform(-0.7, 0.2), rng.uniform(0.1, 0.62))
            level = (
                rng.uniform(-1.0, 1.0) if rng.random() < 0.55 else -2.0
            )  # fraction of the lumen that is gas
            direction = unit(rng.standard_normal(3))
            for _ in range(int(rng.integers(3, 6))):
                direction = unit(direction + 0.9 * rng.standard_normal(3))
                q = p + direction * r * rng.uniform(2.0, 4.0)
                q[0] = np.clip(q[0], cx - 0.75 * ac, cx + 0.75 * ac)
                q[1] = np.clip(q[1], cy - 0.8 * bc, cy + 0.35 * bc)
                q[2] = min(q[2], self.abd_lo + 0.65 * length)
                self.bowel.append((Tube(p, q, r, r), level))
                p = q

    def _ta(self, z):
        return (z - self.abd_lo) * (1.0 / self.abd_len)
