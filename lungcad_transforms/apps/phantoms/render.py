"""Rendering an anatomy on a grid: the tissue map, partial-volume fractions and the ground truth.

:func:`render_anatomy` walks the body from outside in (table, body wall, rib cage, cavity, abdomen,
lungs, heart, great vessels, spine, oesophagus) writing tissue codes, then computes the thin structures
as partial-volume fractions (fissures, airway walls and lumens, lung vessels, nodules) so that the
modality renderers can composite them at sub-voxel precision. The result, :class:`Rendered`, is the same
for every modality; CT, PET and MR differ only in the values they give each tissue.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from lungcad_transforms.apps.phantoms.grid import Grid
from lungcad_transforms.apps.phantoms.organs import paint_abdomen, paint_heart
from lungcad_transforms.apps.phantoms.shapes import Tube, paint_tube, tube_fraction
from lungcad_transforms.apps.phantoms.skeleton import paint_pelvis, paint_ribs, paint_spine
from lungcad_transforms.apps.phantoms.tissues import _T

if TYPE_CHECKING:
    from lungcad_transforms.apps.phantoms.anatomy import Anatomy

__all__ = []


@dataclass
class Rendered:
    """An anatomy rasterised on a grid (arrays of the grid's shape unless said otherwise)."""

    tissues: np.ndarray  # uint8
    lungs: np.ndarray  # bool
    nodule_labels: np.ndarray  # uint8
    vessel_frac: np.ndarray  # float32, lung vessels
    airway_outer: np.ndarray  # float32, airway lumen + wall
    airway_lumen: np.ndarray  # float32
    nodule_frac: list[
        tuple[tuple[slice, slice, slice], np.ndarray, np.ndarray | None]
    ]  # per nodule: (sl, frac, core frac), all None when the nodule misses the grid
    fissure_frac: np.ndarray  # float32
    t: np.ndarray  # (1, 1, Z) relative height
    y: np.ndarray  # (1, Y, 1) world y


def render_anatomy(an: Anatomy, grid: Grid) -> Rendered:
    """Rasterise ``an`` on ``grid`` (what :meth:`Anatomy.render` returns)."""
    x, y, z = grid.open_coords()
    t = an._t(z)
    shape = grid.shape
    tissues = np.zeros(shape, dtype=np.uint8)
    _paint_table(an, tissues, x, y)
    _paint_body_wall(an, tissues, x, y)

    # rib cage ring (ribs, costal cartilage, sternum) and the cavity inside it
    cav_r2 = an.cavity_r2(x, y)  # (X, Y, 1)
    cav_s = an.cavity_scale(t)  # (1, 1, Z)
    cavity = cav_r2 <= cav_s * cav_s
    ring = ~cavity & (cav_r2 <= (cav_s * (1 + an.rib)) ** 2)
    ta = an._ta(z)
    paint_ribs(an, tissues, ring & (ta > 0.72), x, y, t, cav_r2, cav_s)
    paint_pelvis(an, tissues, ring & (ta < 0.25), x, y)
    np.copyto(tissues, np.uint8(_T["fat"]), where=cavity)

    lungs = np.zeros(shape, dtype=bool)
    if an.chest:
        dia = np.where(x < an.xm, an.diaphragm_t(x, y, "right"), an.diaphragm_t(x, y, "left"))
        paint_abdomen(an, grid, tissues, cavity & (t <= dia), x, y, z, t, dia)
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
        paint_heart(an, grid, tissues)
    else:
        paint_abdomen(an, grid, tissues, cavity, x, y, z, t)

    for tube in an.great_vessels:
        paint_tube(tissues, grid, tube, _T["blood"])
    for tube in an.abd_vessels:  # the aorta and cava pass behind the lung bases
        paint_tube(tissues, grid, tube, _T["blood"], where=~lungs)
    paint_spine(an, grid, tissues, x, y, t, lungs)
    if an.chest:
        oesophagus = Tube(
            np.array([*an.es_xy, an._t_to_z(an.t_dome["left"])]),
            np.array([*an.es_xy, an._t_to_z(1.2)]),
            an.r_es,
            an.r_es,
        )
        paint_tube(tissues, grid, oesophagus, _T["muscle"])

    fissure = _fissure_fraction(an, grid, x, y, z, lungs)
    airway_outer, airway_lumen = _airway_fractions(an, grid)
    np.copyto(tissues, np.uint8(_T["airway_wall"]), where=airway_outer >= 0.5)
    np.copyto(tissues, np.uint8(_T["airway"]), where=airway_lumen >= 0.5)
    vessel_frac = _vessel_fraction(an, grid, lungs)
    np.copyto(tissues, np.uint8(_T["vessel"]), where=(vessel_frac >= 0.5) & (airway_outer < 0.5))
    labels, nodule_frac = _paint_nodules(an, grid, tissues, lungs)
    return Rendered(
        tissues, lungs, labels, vessel_frac, airway_outer, airway_lumen, nodule_frac, fissure, t, y
    )


def _paint_table(an: Anatomy, tissues: np.ndarray, x, y) -> None:
    # patient table: two curved carbon-fibre sheets around foam, the same in every slice
    x2 = x[:, 0, 0]
    y1 = y[0, :, 0]
    top = an.table_top - an.table_curve * (x2 - an.bx) ** 2
    depth = y1[None, :] - top[:, None]
    across = np.abs(x2 - an.bx)[:, None] <= an.table_half_w
    table2d = np.zeros(tissues.shape[:2], dtype=np.uint8)
    table2d[across & (depth >= 0) & (depth < an.table_t)] = _T["table_foam"]
    table2d[across & (depth >= 0) & (depth < an.table_sheet)] = _T["table"]
    table2d[across & (depth >= an.table_t - an.table_sheet) & (depth < an.table_t)] = _T["table"]
    tissues[:] = table2d[:, :, None]


def _paint_body_wall(an: Anatomy, tissues: np.ndarray, x, y) -> None:
    # skin, subcutaneous fat and muscle: the trunk's outline is the same in every slice
    rho = an.body_rho(x, y)  # (X, Y, 1)
    plane = np.full(tissues.shape[:2], _T["air"], dtype=np.uint8)
    plane[rho[:, :, 0] <= 1.0] = _T["skin"]
    plane[rho[:, :, 0] <= 1.0 - an.skin] = _T["fat"]
    plane[rho[:, :, 0] <= 1.0 - an.skin - an.fat] = _T["muscle"]
    body2d = rho[:, :, 0] <= 1.0
    np.copyto(tissues, plane[:, :, None], where=body2d[:, :, None])


def _fissure_fraction(an: Anatomy, grid: Grid, x, y, z, lungs: np.ndarray) -> np.ndarray:
    # interlobar fissures: thin pleural sheets, a faint line in the lung
    h = grid.soft_width
    fissure = np.zeros(grid.shape, dtype=np.float32)
    for side, p0, normal, restrict in an.fissures:
        dist = (x - p0[0]) * normal[0] + (y - p0[1]) * normal[1] + (z - p0[2]) * normal[2]
        near = (np.abs(dist) < 0.8 * h) & lungs & ((x < an.xm) if side == "right" else (x >= an.xm))
        if restrict is not None:
            pr, nr = restrict
            near &= (x - pr[0]) * nr[0] + (y - pr[1]) * nr[1] + (z - pr[2]) * nr[2] > 0
        ii, jj, kk = np.nonzero(near)
        fissure[ii, jj, kk] = np.maximum(fissure[ii, jj, kk], 1.0 - np.abs(dist[ii, jj, kk]) / (0.8 * h))
    return fissure


def _airway_fractions(an: Anatomy, grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    # airways: wall and lumen as partial-volume fractions, so that thin walls still show
    airway_outer = np.zeros(grid.shape, dtype=np.float32)
    airway_lumen = np.zeros(grid.shape, dtype=np.float32)
    for tube in an.airways + an.airway_tree:
        outer = Tube(
            tube.p0,
            tube.p1,
            tube.r0 * (1 + an.wall_frac) + 0.3 * grid.soft_width,
            tube.r1 * (1 + an.wall_frac) + 0.3 * grid.soft_width,
        )
        sl, frac = tube_fraction(grid, outer)
        if sl is None:
            continue
        np.maximum(airway_outer[sl], frac, out=airway_outer[sl])
        sl, frac = tube_fraction(grid, tube)
        if sl is not None:
            np.maximum(airway_lumen[sl], frac, out=airway_lumen[sl])
    return airway_outer, airway_lumen


def _vessel_fraction(an: Anatomy, grid: Grid, lungs: np.ndarray) -> np.ndarray:
    # lung vessels, drawn only inside the lungs
    vessel_frac = np.zeros(grid.shape, dtype=np.float32)
    for tube in an.vessels:
        sl, frac = tube_fraction(grid, tube)
        if sl is None:
            continue
        frac *= lungs[sl]
        np.maximum(vessel_frac[sl], frac, out=vessel_frac[sl])
    return vessel_frac


def _paint_nodules(an: Anatomy, grid: Grid, tissues: np.ndarray, lungs: np.ndarray):
    # labels and tissue of every nodule in full; the nodules count as lung (juxtapleural bases too)
    h = grid.soft_width
    labels = np.zeros(grid.shape, dtype=np.uint8)
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
    return labels, nodule_frac
