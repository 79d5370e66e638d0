"""Soft-tissue organs of the phantom, painted into the tissue map: the abdominal organs and the heart.

The anatomy lays the organs out (:mod:`~lungcad_transforms.apps.phantoms.abdomen`,
:mod:`~lungcad_transforms.apps.phantoms.mediastinum`); these painters fill their voxels for the
renderer (:mod:`~lungcad_transforms.apps.phantoms.render`): the diaphragm, liver, spleen, kidneys with
their sinus fat, psoas muscles, stomach with its gas cap, bladder and bowel loops (fluid, some with an
air-fluid level), and the heart's blood pool with the left ventricle's myocardium.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from lungcad_transforms.apps.phantoms.grid import Grid
from lungcad_transforms.apps.phantoms.shapes import paint_ellipsoid, segment_distance
from lungcad_transforms.apps.phantoms.tissues import _T

if TYPE_CHECKING:
    from lungcad_transforms.apps.phantoms.anatomy import Anatomy

__all__ = []


def paint_abdomen(an: Anatomy, grid: Grid, tissues, region, x, y, z, t, dia=None) -> None:
    """Abdominal organs inside ``region`` (the abdominal cavity, or the part of the thoracic cavity
    below the diaphragm when ``dia`` gives the diaphragm's height)."""
    inner = region
    if dia is not None:
        # a thin muscular diaphragm under the lung bases; under the right dome, liver
        thick = max(1.2 * an._voxel[2], 3.0 * an.scale) / an.z_len
        np.copyto(tissues, np.uint8(_T["muscle"]), where=region)
        inner = region & (t <= dia - thick)
        np.copyto(tissues, np.uint8(_T["fat"]), where=inner)
        dome = inner & (an._ta(z) > 0.78) & (x < an.xm + 0.25 * an.ac - 0.2 * (y - an.cy))
        np.copyto(tissues, np.uint8(_T["liver"]), where=dome)
    ta = an._ta(z)
    # psoas muscles beside the lumbar spine, thicker further down
    if ta.min() < 0.7:
        for s in (-1, 1):
            c = np.array([an.spine_x + s * 1.6 * an.r_vb, an.spine_y - 0.1 * an.r_vb])
            r = an.r_vb * (0.5 + 0.6 * np.clip(1 - ta, 0, 1)) * (ta < 0.7)
            np.copyto(
                tissues, np.uint8(_T["muscle"]), where=inner & ((x - c[0]) ** 2 + (y - c[1]) ** 2 <= r * r)
            )
    paint_ellipsoid(tissues, grid, an.liver_c, an.liver_r, _T["liver"], inner)
    paint_ellipsoid(tissues, grid, an.spleen_c, an.spleen_r, _T["spleen"], inner)
    for kc in an.kidney_c:
        paint_ellipsoid(tissues, grid, kc, an.kidney_r, _T["kidney"], inner)
        sinus_c = kc + np.array(
            [-np.sign(kc[0] - an.spine_x) * 0.35 * an.kidney_r[0], -0.1 * an.kidney_r[1], 0]
        )
        paint_ellipsoid(tissues, grid, sinus_c, an.kidney_r, _T["fat"], inner, scale=0.45)
    # stomach with a gas cap anteriorly, where gas rises in a supine patient
    paint_ellipsoid(tissues, grid, an.stomach_c, an.stomach_r, _T["bowel"], inner)
    level = an.stomach_c[1] - 0.3 * an.stomach_r[1]
    paint_ellipsoid(
        tissues, grid, an.stomach_c, an.stomach_r, _T["gas"], inner, 0.8, lambda lx, ly, lz: ly < level
    )
    paint_ellipsoid(tissues, grid, an.bladder_c, an.bladder_r, _T["bladder"], inner)
    for tube, gas_level in an.bowel:
        sl = grid.bbox(*tube.lo_hi(0.0))
        if sl is None:
            continue
        lx, ly, lz = grid.local_coords(sl)
        wall = (tube.signed(lx, ly, lz) <= 0) & inner[sl]
        np.copyto(tissues[sl], np.uint8(_T["bowel"]), where=wall)
        lumen = (tube.signed(lx, ly, lz, grow=-max(0.15 * tube.r0, 0.6 * grid.soft_width)) <= 0) & wall
        np.copyto(tissues[sl], np.uint8(_T["fluid"]), where=lumen)
        if gas_level > -1.5:
            # gas above the air-fluid level (anterior = smaller y)
            _, s_along = segment_distance(lx, ly, lz, tube.p0, tube.p1)
            axis_y = tube.p0[1] + s_along * (tube.p1[1] - tube.p0[1])
            np.copyto(tissues[sl], np.uint8(_T["gas"]), where=lumen & (ly - axis_y < gas_level * tube.r0))


def paint_heart(an: Anatomy, grid: Grid, tissues) -> None:
    """The heart: blood pool, with the wall of the left ventricle as myocardium."""
    r_max = an.heart_r.max() * 1.1
    sl = grid.bbox(an.heart_c - r_max, an.heart_c + r_max)
    if sl is None:
        return
    lx, ly, lz = grid.local_coords(sl)
    heart = an.heart_q(lx, ly, lz) <= 1
    sub = tissues[sl]
    np.copyto(sub, np.uint8(_T["blood"]), where=heart)
    lv_wall = heart & (an.heart_q(lx, ly, lz, an.lv_c, an.lv_r * 1.45) <= 1)
    np.copyto(sub, np.uint8(_T["myocardium"]), where=lv_wall)
    np.copyto(sub, np.uint8(_T["blood"]), where=an.heart_q(lx, ly, lz, an.lv_c, an.lv_r) <= 1)
