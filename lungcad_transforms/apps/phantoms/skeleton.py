"""Bones of the phantom, painted into the tissue map: ribs, costal cartilage, sternum, pelvis and spine.

The anatomy holds only their parameters (rib period and obliquity, vertebral period, the spine's
position); these painters turn them into cortical bone, marrow, cartilage and discs voxel by voxel, as
the renderer (:mod:`~lungcad_transforms.apps.phantoms.render`) walks the grid.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from lungcad_transforms.apps.phantoms.grid import Grid
from lungcad_transforms.apps.phantoms.tissues import _T

if TYPE_CHECKING:
    from lungcad_transforms.apps.phantoms.anatomy import Anatomy

__all__ = []


def paint_ribs(an: Anatomy, tissues, ring, x, y, t, cav_r2, cav_s) -> None:
    """Ribs (oblique bands of cortex around marrow), costal cartilage and sternum within ``ring``."""
    ii, jj, kk = np.nonzero(ring)
    xs, ys, ts = x[ii, 0, 0], y[0, jj, 0], t[0, 0, kk]
    u = (xs - an.cx) / an.ac
    v = (ys - an.cy) / an.bc
    r = np.sqrt(u * u + v * v)
    alpha = np.arccos(np.clip(v / np.maximum(r, 1e-6), -1, 1))  # 0 at the back, pi at the front
    # ribs run obliquely: a rib's front end lies lower than its back end
    phase = (ts + an.rib_drop * alpha / np.pi) / an.rib_period + an.rib_phase
    pos = phase - np.floor(phase)
    in_rib = (pos < an.rib_width) & (alpha > 0.28)
    radial = (r / cav_s[0, 0, kk] - 1.0) / an.rib
    edge = np.maximum(np.abs(2 * radial - 1), np.abs(2 * pos / an.rib_width - 1))
    code = np.where(edge > 0.55, _T["cortical_bone"], _T["marrow"]).astype(np.uint8)
    anterior = alpha > 0.84 * np.pi
    code = np.where(anterior, np.uint8(_T["cartilage"]), code)
    if an.chest:
        t_sternum = an.t_dome["left"] - 0.03
        sternum = (np.abs(xs - an.cx) < 0.09 * an.a) & (v < 0) & (ts > t_sternum)
        sternum &= radial < 1.4
        in_rib = in_rib | sternum
        code = np.where(sternum, np.where(edge > 0.7, _T["cortical_bone"], _T["marrow"]), code).astype(
            np.uint8
        )
    tissues[ii[in_rib], jj[in_rib], kk[in_rib]] = code[in_rib]


def paint_pelvis(an: Anatomy, tissues, ring, x, y) -> None:
    """The iliac wings within ``ring`` (the rib layer of the lowest abdominal slices)."""
    # iliac wings: curved bone plates at the back and sides of the lowest abdominal slices
    ii, jj, kk = np.nonzero(ring)
    if len(ii) == 0:
        return
    u = (x[ii, 0, 0] - an.cx) / an.ac
    v = (y[0, jj, 0] - an.cy) / an.bc
    alpha = np.arccos(np.clip(v / np.maximum(np.sqrt(u * u + v * v), 1e-6), -1, 1))
    wing = (alpha > 0.35) & (alpha < 1.6)
    tissues[ii[wing], jj[wing], kk[wing]] = _T["cortical_bone"]


def paint_spine(an: Anatomy, grid: Grid, tissues, x, y, t, lungs) -> None:
    """Vertebrae, discs, the spinal canal and the processes, kept out of the ``lungs``."""
    # vertebral bodies separated by discs, the spinal canal with its bony arch, and the spinous and
    # transverse processes
    nz = tissues.shape[2]
    phase = (t[0, 0] / an.vert_period + an.vert_phase) % 1.0
    vertebra = phase > 0.2  # (Z,)
    r_vb, sx, sy = an.r_vb, an.spine_x, an.spine_y
    pad = 3.5 * r_vb
    sl = grid.bbox(
        np.array([sx - pad, sy - 1.2 * r_vb, grid.box_lo[2]]),
        np.array([sx + pad, sy + 3.2 * r_vb, grid.box_hi[2]]),
    )
    if sl is None:
        return
    lx, ly, _ = grid.local_coords(sl)
    dx, dy = lx[:, :, 0] - sx, ly[:, :, 0] - sy  # (X', Y')
    d = np.sqrt(dx * dx + dy * dy)
    canal_c = sy + r_vb + 0.55 * r_vb
    r_canal = 0.5 * r_vb
    dc = np.sqrt(dx * dx + (ly[:, :, 0] - canal_c) ** 2)
    thin = max(0.1 * r_vb, 0.6 * grid.soft_width)
    body_cortex = (d <= r_vb) & (d > r_vb - thin)
    body_inner = d <= r_vb
    arch = (dc <= r_canal + max(0.22 * r_vb, grid.soft_width)) & (dc > r_canal)
    canal = dc <= r_canal
    spinous = (
        (np.abs(dx) < max(0.12 * r_vb, 0.6 * grid.soft_width))
        & (ly[:, :, 0] > canal_c)
        & (ly[:, :, 0] < canal_c + 1.5 * r_vb)
    )
    along = np.abs(dx) * 0.85 - (ly[:, :, 0] - canal_c) * 0.5  # along the transverse processes
    across = np.abs(dx) * 0.5 + (ly[:, :, 0] - canal_c) * 0.85
    transverse = (
        (along > 0) & (along < 1.8 * r_vb) & (np.abs(across) < max(0.14 * r_vb, 0.6 * grid.soft_width))
    )
    sub = tissues[sl]
    lung_sub = lungs[sl]
    for k in range(nz):
        s2 = sub[:, :, k]
        free = ~lung_sub[:, :, k]  # the transverse processes stay behind the pleura
        if vertebra[k]:
            s2[body_inner & free] = _T["marrow"]
            s2[body_cortex & free] = _T["cortical_bone"]
            s2[(arch | spinous | transverse) & free] = _T["cortical_bone"]
        else:
            s2[body_inner & free] = _T["cartilage"]  # intervertebral disc
            s2[arch & free] = _T["muscle"]  # ligaments between the arches
        s2[canal] = _T["csf"]
