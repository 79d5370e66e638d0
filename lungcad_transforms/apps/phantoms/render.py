"""Rendering an anatomy onto a grid as tissue fractions."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lungcad_transforms.apps.phantoms.anatomy import Anatomy

from dataclasses import dataclass

import numpy as np

from lungcad_transforms.apps.phantoms.grid import _Grid, _paint_tube, _segment_distance, _Tube, _tube_fraction
from lungcad_transforms.apps.phantoms.tissues import _T

__all__ = []


@dataclass
class _Rendered:
    tissues: np.ndarray  # uint8
    lungs: np.ndarray  # bool
    nodule_labels: np.ndarray  # uint8
    vessel_frac: np.ndarray  # float32, lung vessels
    airway_outer: np.ndarray  # float32, airway lumen + wall
    airway_lumen: np.ndarray  # float32
    nodule_frac: list[
        tuple[tuple[slice, slice, slice], np.ndarray, np.ndarray | None]
    ]  # per nodule: (sl, frac, core frac)
    fissure_frac: np.ndarray  # float32
    t: np.ndarray  # (1, 1, Z) relative height
    y: np.ndarray  # (1, Y, 1) world y


def _render(an: Anatomy, grid: _Grid) -> _Rendered:
    x, y, z = grid.open_coords()
    t = an._t(z)
    shape = grid.shape
    h = grid.soft_width
    tissues = np.zeros(shape, dtype=np.uint8)

    # patient table: two curved carbon-fibre sheets around foam
    x2 = x[:, 0, 0]
    y1 = y[0, :, 0]
    top = an.table_top - an.table_curve * (x2 - an.bx) ** 2
    depth = y1[None, :] - top[:, None]
    across = np.abs(x2 - an.bx)[:, None] <= an.table_half_w
    table2d = np.zeros(shape[:2], dtype=np.uint8)
    table2d[across & (depth >= 0) & (depth < an.table_t)] = _T["table_foam"]
    table2d[across & (depth >= 0) & (depth < an.table_sheet)] = _T["table"]
    table2d[across & (depth >= an.table_t - an.table_sheet) & (depth < an.table_t)] = _T["table"]
    tissues[:] = table2d[:, :, None]

    # body wall: skin, subcutaneous fat, muscle
    rho = an.body_rho(x, y)  # (X, Y, 1)
    plane = np.full(shape[:2], _T["air"], dtype=np.uint8)
    plane[rho[:, :, 0] <= 1.0] = _T["skin"]
    plane[rho[:, :, 0] <= 1.0 - an.skin] = _T["fat"]
    plane[rho[:, :, 0] <= 1.0 - an.skin - an.fat] = _T["muscle"]
    body2d = rho[:, :, 0] <= 1.0
    np.copyto(tissues, plane[:, :, None], where=body2d[:, :, None])

    # rib cage ring (ribs, costal cartilage, sternum) and the cavity inside it
    cav_r2 = an.cavity_r2(x, y)  # (X, Y, 1)
    cav_s = an.cavity_scale(t)  # (1, 1, Z)
    cavity = cav_r2 <= cav_s * cav_s
    ring = ~cavity & (cav_r2 <= (cav_s * (1 + an.rib)) ** 2)
    ta = an._ta(z)
    _paint_ribs(an, tissues, ring & (ta > 0.72), x, y, t, cav_r2, cav_s)
    _paint_pelvis(an, tissues, ring & (ta < 0.25), x, y)
    np.copyto(tissues, np.uint8(_T["fat"]), where=cavity)

    lungs = np.zeros(shape, dtype=bool)
    if an.chest:
        dia = np.where(x < an.xm, an.diaphragm_t(x, y, "right"), an.diaphragm_t(x, y, "left"))
        _paint_abdomen(an, grid, tissues, cavity & (t <= dia), x, y, z, t, dia)
        core = an._lung_core(x, y, z, t, cav_r2, cav_s)
        for tube in an._lung_exclusions():
            sl = grid.bbox(*tube.lo_hi(0.0))
            if sl is None:
                continue
            lx, ly, lz = grid.local_coords(sl)
            core[sl] &= tube.signed(lx, ly, lz) > 0
        lungs = core
        # a missing lung leaves its pleural space filled with fluid (as after a pneumonectomy)
        if an.lungs in ("left", "right"):
            other = "left" if an.lungs == "right" else "right"
            missing = an._lung_core(x, y, z, t, cav_r2, cav_s, sides=[other])
            np.copyto(tissues, np.uint8(_T["fluid"]), where=missing)
        np.copyto(tissues, np.uint8(_T["lung"]), where=lungs)
        _paint_heart(an, grid, tissues)
    else:
        _paint_abdomen(an, grid, tissues, cavity, x, y, z, t)

    for tube in an.great_vessels:
        _paint_tube(tissues, grid, tube, _T["blood"])
    for tube in an.abd_vessels:  # the aorta and cava pass behind the lung bases
        _paint_tube(tissues, grid, tube, _T["blood"], where=~lungs)
    _paint_spine(an, grid, tissues, x, y, t, lungs)
    if an.chest:
        oesophagus = _Tube(
            np.array([*an.es_xy, an._t_to_z(an.t_dome["left"])]),
            np.array([*an.es_xy, an._t_to_z(1.2)]),
            an.r_es,
            an.r_es,
        )
        _paint_tube(tissues, grid, oesophagus, _T["muscle"])

    # interlobar fissures: thin pleural sheets, a faint line in the lung
    fissure = np.zeros(shape, dtype=np.float32)
    for side, p0, normal, restrict in an.fissures:
        dist = (x - p0[0]) * normal[0] + (y - p0[1]) * normal[1] + (z - p0[2]) * normal[2]
        near = (np.abs(dist) < 0.8 * h) & lungs & ((x < an.xm) if side == "right" else (x >= an.xm))
        if restrict is not None:
            pr, nr = restrict
            near &= (x - pr[0]) * nr[0] + (y - pr[1]) * nr[1] + (z - pr[2]) * nr[2] > 0
        ii, jj, kk = np.nonzero(near)
        fissure[ii, jj, kk] = np.maximum(fissure[ii, jj, kk], 1.0 - np.abs(dist[ii, jj, kk]) / (0.8 * h))

    # airways: wall and lumen as partial-volume fractions, so that thin walls still show
    airway_outer = np.zeros(shape, dtype=np.float32)
    airway_lumen = np.zeros(shape, dtype=np.float32)
    for tube in an.airways + an.airway_tree:
        outer = _Tube(
            tube.p0,
            tube.p1,
            tube.r0 * (1 + an.wall_frac) + 0.3 * grid.soft_width,
            tube.r1 * (1 + an.wall_frac) + 0.3 * grid.soft_width,
        )
        sl, frac = _tube_fraction(grid, outer)
        if sl is None:
            continue
        np.maximum(airway_outer[sl], frac, out=airway_outer[sl])
        sl, frac = _tube_fraction(grid, tube)
        if sl is not None:
            np.maximum(airway_lumen[sl], frac, out=airway_lumen[sl])
    np.copyto(tissues, np.uint8(_T["airway_wall"]), where=airway_outer >= 0.5)
    np.copyto(tissues, np.uint8(_T["airway"]), where=airway_lumen >= 0.5)

    # lung vessels, drawn only inside the lungs
    vessel_frac = np.zeros(shape, dtype=np.float32)
    for tube in an.vessels:
        sl, frac = _tube_fraction(grid, tube)
        if sl is None:
            continue
        frac *= lungs[sl]
        np.maximum(vessel_frac[sl], frac, out=vessel_frac[sl])
    np.copyto(tissues, np.uint8(_T["vessel"]), where=(vessel_frac >= 0.5) & (airway_outer < 0.5))

    # nodules
    labels = np.zeros(shape, dtype=np.uint8)
    nodule_frac = []
    for n, spec in enumerate(an._nodule_specs, start=1):
        r_max = spec.radius * (1 + spec.lobe_amp) + h
        sl = grid.bbox(spec.center - r_max, spec.center + r_max)
        if sl is None:
            nodule_frac.append((None, None, None))
            continue
        lx, ly, lz = grid.local_coords(sl)
        sd = spec.signed(lx, ly, lz)
        frac = np.clip(0.5 - sd / h, 0, 1).astype(np.float32)
        core = None
        if spec.nodule.kind == "part_solid":
            core = np.clip(0.5 - spec.signed(lx, ly, lz, spec.core_frac) / h, 0, 1).astype(np.float32)
        inside = sd <= 0
        np.copyto(labels[sl], np.uint8(n), where=inside)
        np.copyto(tissues[sl], np.uint8(_T["nodule"]), where=inside)
        lungs[sl] |= inside
        nodule_frac.append((sl, frac, core))

    return _Rendered(
        tissues, lungs, labels, vessel_frac, airway_outer, airway_lumen, nodule_frac, fissure, t, y
    )


def _paint_ribs(an: Anatomy, tissues, ring, x, y, t, cav_r2, cav_s) -> None:
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


def _paint_pelvis(an: Anatomy, tissues, ring, x, y) -> None:
    # iliac wings: curved bone plates at the back and sides of the lowest abdominal slices
    ii, jj, kk = np.nonzero(ring)
    if len(ii) == 0:
        return
    u = (x[ii, 0, 0] - an.cx) / an.ac
    v = (y[0, jj, 0] - an.cy) / an.bc
    alpha = np.arccos(np.clip(v / np.maximum(np.sqrt(u * u + v * v), 1e-6), -1, 1))
    wing = (alpha > 0.35) & (alpha < 1.6)
    tissues[ii[wing], jj[wing], kk[wing]] = _T["cortical_bone"]


def _ellipsoid_q(x, y, z, c, r):
    return ((x - c[0]) / r[0]) ** 2 + ((y - c[1]) / r[1]) ** 2 + ((z - c[2]) / r[2]) ** 2


def _paint_ellipsoid(
    tissues, grid: _Grid, c, r, code: int, where: np.ndarray, scale: float = 1.0, extra=None
) -> None:
    r = np.asarray(r) * scale
    sl = grid.bbox(np.asarray(c) - r, np.asarray(c) + r)
    if sl is None:
        return
    lx, ly, lz = grid.local_coords(sl)
    inside = (_ellipsoid_q(lx, ly, lz, c, r) <= 1) & where[sl]
    if extra is not None:
        inside &= extra(lx, ly, lz)
    np.copyto(tissues[sl], np.uint8(code), where=inside)


def _paint_abdomen(an: Anatomy, grid: _Grid, tissues, region, x, y, z, t, dia=None) -> None:
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
    _paint_ellipsoid(tissues, grid, an.liver_c, an.liver_r, _T["liver"], inner)
    _paint_ellipsoid(tissues, grid, an.spleen_c, an.spleen_r, _T["spleen"], inner)
    for kc in an.kidney_c:
        _paint_ellipsoid(tissues, grid, kc, an.kidney_r, _T["kidney"], inner)
        sinus_c = kc + np.array(
            [-np.sign(kc[0] - an.spine_x) * 0.35 * an.kidney_r[0], -0.1 * an.kidney_r[1], 0]
        )
        _paint_ellipsoid(tissues, grid, sinus_c, an.kidney_r, _T["fat"], inner, scale=0.45)
    # stomach with a gas cap anteriorly, where gas rises in a supine patient
    _paint_ellipsoid(tissues, grid, an.stomach_c, an.stomach_r, _T["bowel"], inner)
    level = an.stomach_c[1] - 0.3 * an.stomach_r[1]
    _paint_ellipsoid(
        tissues, grid, an.stomach_c, an.stomach_r, _T["gas"], inner, 0.8, lambda lx, ly, lz: ly < level
    )
    _paint_ellipsoid(tissues, grid, an.bladder_c, an.bladder_r, _T["bladder"], inner)
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
            _, s_along = _segment_distance(lx, ly, lz, tube.p0, tube.p1)
            axis_y = tube.p0[1] + s_along * (tube.p1[1] - tube.p0[1])
            np.copyto(tissues[sl], np.uint8(_T["gas"]), where=lumen & (ly - axis_y < gas_level * tube.r0))


def _paint_heart(an: Anatomy, grid: _Grid, tissues) -> None:
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


def _paint_spine(an: Anatomy, grid: _Grid, tissues, x, y, t, lungs) -> None:
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
