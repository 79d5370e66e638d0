"""Dense chest pathology added to a CT phantom: the cases a threshold lung mask gets wrong.

:func:`add_pathology` paints, into a rendered :class:`~lungcad_transforms.apps.phantoms.results.CTPhantom`,
findings that are as dense as soft tissue and lie against the lung's own boundary:

- ``chest_wall_tumour``: a lobulated 30-70 mm mass in the lung, broad-based against the costal pleura;
- ``hilar_tumour``: a mass at the hilum whose medial side touches the mediastinum;
- ``consolidation``: a wedge of the lung from near the hilum out to the costal pleura (a segment), filled
  with fluid-dense tissue, its bronchi still holding air (air bronchograms);
- ``effusion``: pleural fluid in the dependent (posterior) costophrenic region of the base, a layer that
  thins upwards; it takes the place of the lung it compresses.

Ground truth: tumours and consolidation stay lung (``lungs`` keeps their voxels: they are intrapulmonary
pathology a lung mask must hold), pleural fluid does not (its voxels leave ``lungs``).
:func:`organ_masks` gives the heart, liver and stomach voxels that a lung mask must leave out.
``make_ct_phantom(..., pathology=KINDS)`` is the opt-in way to get such a phantom; without it the phantom
generator's output is unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from lungcad_transforms.apps.phantoms.results import CTPhantom
from lungcad_transforms.apps.phantoms.tissues import _T

__all__ = ["PATHOLOGY_KINDS", "Finding", "PathologyCTPhantom", "add_pathology", "organ_masks"]

#: The kinds :func:`add_pathology` knows, in the order it paints them.
PATHOLOGY_KINDS: tuple[str, ...] = ("chest_wall_tumour", "hilar_tumour", "consolidation", "effusion")

_STREAM_PATHOLOGY = 97  # random stream of the findings (see seeding.py: the phantom's streams are 0-5)
_HU = {"tumour": 38.0, "consolidation": 32.0, "effusion": 12.0}
_HU_CONTRAST = {"tumour": 72.0, "consolidation": 65.0}


@dataclass(frozen=True)
class Finding:
    """One finding of :func:`add_pathology`.

    Attributes:
        kind: one of :data:`PATHOLOGY_KINDS`.
        side: "right" or "left" lung.
        center_lps: centre of its voxels, LPS world mm.
        size_mm: tumour diameter; consolidation: length of the wedge; effusion: greatest depth.
        label: its value in ``pathology_labels``.
        intrapulmonary: part of the lung ground truth (tumours, consolidation) or not (effusion).
        voxels: how many voxels it holds.
    """

    kind: str
    side: str
    center_lps: tuple[float, float, float]
    size_mm: float
    label: int
    intrapulmonary: bool
    voxels: int


@dataclass(eq=False, kw_only=True)
class PathologyCTPhantom(CTPhantom):
    """A :class:`CTPhantom` with dense findings: ``pathology_labels`` (uint8, 0 or ``findings[n-1].label``)."""

    pathology_labels: np.ndarray | None = None
    findings: list[Finding] = field(default_factory=list)


def _world(ct: CTPhantom) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    o, s, n = ct.origin_lps, ct.spacing, ct.hu.shape
    return tuple(  # type: ignore[return-value]
        (o[d] + s[d] * np.arange(n[d])).reshape([-1 if e == d else 1 for e in range(3)]) for d in range(3)
    )


def _side_mask(ct: CTPhantom, side: str) -> np.ndarray:
    x = _world(ct)[0]
    return (x < ct.anatomy.xm) if side == "right" else (x >= ct.anatomy.xm)


def _lobulated_ball(ct: CTPhantom, centre: np.ndarray, radius: float, rng: np.random.Generator) -> np.ndarray:
    """Voxels of a ball of ``radius`` mm around ``centre`` (LPS mm) with a gently lobulated surface."""
    out = np.zeros(ct.hu.shape, dtype=bool)
    lo = np.floor((centre - 1.2 * radius - np.asarray(ct.origin_lps)) / np.asarray(ct.spacing)).astype(int)
    hi = np.ceil((centre + 1.2 * radius - np.asarray(ct.origin_lps)) / np.asarray(ct.spacing)).astype(int) + 1
    box = tuple(slice(max(int(a), 0), min(int(b), n)) for a, b, n in zip(lo, hi, ct.hu.shape, strict=True))
    if any(b.start >= b.stop for b in box):
        return out
    x, y, z = _world(ct)
    x, y, z = x[box[0]], y[:, box[1]], z[:, :, box[2]]
    dx, dy, dz = x - centre[0], y - centre[1], z - centre[2]
    r = np.sqrt(dx * dx + dy * dy + dz * dz) + 1e-6
    lobes = np.zeros(np.broadcast_shapes(dx.shape, dy.shape, dz.shape), dtype=np.float32)
    for _ in range(3):  # a few low-order bumps: real masses are lobulated, not spheres
        u = rng.normal(size=3)
        u /= np.linalg.norm(u)
        lobes += rng.uniform(0.04, 0.08) * ((dx * u[0] + dy * u[1] + dz * u[2]) / r) ** 2
    out[box] = r <= radius * (0.94 + lobes)
    return out


def _box(mask: np.ndarray, margin: int) -> tuple[slice, slice, slice]:
    idx = np.argwhere(mask)
    lo, hi = np.maximum(idx.min(axis=0) - margin, 0), np.minimum(idx.max(axis=0) + margin + 1, mask.shape)
    return tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))  # type: ignore[return-value]


def _cavity(ct: CTPhantom) -> np.ndarray:
    an = ct.anatomy
    x, y, z = _world(ct)
    return an.cavity_r2(x, y) <= an.cavity_scale(an._t(z)) ** 2


def _chest_wall_tumour(ct, lungs, side, radius, rng) -> np.ndarray | None:
    an = ct.anatomy
    x, y, _ = _world(ct)
    cavity = _cavity(ct)
    k_lung = np.flatnonzero((lungs & _side_mask(ct, side)).any(axis=(0, 1)))
    k_lo, k_hi = np.percentile(k_lung, [25, 50]).astype(int)
    # lung voxels on the cavity's rim (the costal pleura), lateral enough to be clear of the mediastinum
    near_wall = lungs & _side_mask(ct, side) & ~ndimage.binary_erosion(cavity, iterations=2)
    near_wall &= np.abs(x - an.xm) > 0.55 * an.ac
    near_wall[:, :, :k_lo] = False
    near_wall[:, :, k_hi:] = False
    points = np.argwhere(near_wall)
    if not len(points):
        return None
    outside_lung = cavity & ~lungs  # mediastinum, heart, abdomen: the tumour must not reach them
    for _ in range(60):
        p = points[rng.integers(len(points))]
        centre = np.asarray(ct.origin_lps) + p * np.asarray(ct.spacing)
        # into the cavity: against the gradient of its elliptic radius
        normal = -np.array([(centre[0] - an.cx) / an.ac**2, (centre[1] - an.cy) / an.bc**2, 0.0])
        centre = centre + 0.35 * radius * normal / np.linalg.norm(normal)
        ball = _lobulated_ball(ct, centre, radius, rng)
        if np.count_nonzero(ball & outside_lung) < 0.01 * np.count_nonzero(ball):
            return ball & lungs
    return None


def _hilar_tumour(ct, lungs, side, radius, rng) -> np.ndarray | None:
    an = ct.anatomy
    spacing, origin = np.asarray(ct.spacing), np.asarray(ct.origin_lps)
    sign = -1.0 if side == "right" else 1.0
    start = np.asarray(an.hilum[side], dtype=float) + rng.uniform(-4, 4, size=3) * (0, 1, 1)
    # distances inside the lung, in a box around the hilum only (the whole volume would cost seconds)
    lo = np.maximum(np.floor((start - 3.6 * radius - 10 - origin) / spacing).astype(int), 0)
    hi = np.minimum(np.ceil((start + 3.6 * radius + 10 - origin) / spacing).astype(int) + 1, lungs.shape)
    box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
    inside_mm = ndimage.distance_transform_edt(np.pad(lungs[box], 1, constant_values=True), sampling=spacing)
    inside_mm = inside_mm[1:-1, 1:-1, 1:-1]
    cavity_rim = ~ndimage.binary_erosion(_cavity(ct)[box], iterations=1, border_value=1)
    wall_mm = ndimage.distance_transform_edt(~cavity_rim, sampling=spacing)
    for step in np.arange(0.0, 2.5 * radius, 1.0):
        centre = start + np.array([sign * step, 0.0, 0.0])
        idx = tuple(np.round((centre - origin) / spacing).astype(int) - lo)
        if min(idx) < 0 or any(i >= n for i, n in zip(idx, inside_mm.shape, strict=True)):
            continue
        # the nearest non-lung is the hilum / mediastinum: reach 0.45 radius into it
        if lungs[box][idx] and inside_mm[idx] >= 0.55 * radius:
            if wall_mm[idx] < radius + 8.0:
                return None  # it would reach the chest wall too: not a hilar mass
            return _lobulated_ball(ct, centre, radius, rng) & lungs
    return None


def _consolidation(ct, lungs, side, rng) -> np.ndarray:
    an = ct.anatomy
    x, y, z = _world(ct)
    apex = np.asarray(an.hilum[side], dtype=float)
    lateral = -1.0 if side == "right" else 1.0
    # the posterior segment of the upper lobe: up, back and out from the hilum
    axis = np.array([lateral * rng.uniform(0.3, 0.5), rng.uniform(0.6, 0.8), rng.uniform(0.45, 0.65)])
    axis /= np.linalg.norm(axis)
    dx, dy, dz = x - apex[0], y - apex[1], z - apex[2]
    along = dx * axis[0] + dy * axis[1] + dz * axis[2]
    dist = np.sqrt(dx * dx + dy * dy + dz * dz)
    cone = along >= np.cos(np.deg2rad(rng.uniform(24, 30))) * dist
    return cone & (dist >= 0.25 * an.bc) & lungs & _side_mask(ct, side)


def _effusion(ct, lungs, side, rng) -> tuple[np.ndarray, float]:
    y, z = _world(ct)[1], _world(ct)[2]
    lung = lungs & _side_mask(ct, side)
    depth_max = rng.uniform(30.0, 40.0)
    height = rng.uniform(60.0, 80.0)
    z_base = float(z[0, 0, np.flatnonzero(lung.any(axis=(0, 1)))[0]])
    # the fluid lies behind the lung: per (x, z) column, the posterior-most lung of the depth at that height
    y_post = np.where(lung.any(axis=1), np.max(np.where(lung, y, -np.inf), axis=1), -np.inf)[:, None, :]
    depth = depth_max * np.clip(1.0 - (z - z_base) / height, 0.0, 1.0)
    return lung & (depth > 0) & (y > y_post - depth), depth_max


def add_pathology(
    ct: CTPhantom,
    kinds: Sequence[str] = PATHOLOGY_KINDS,
    seed: int = 0,
    tumour_diameter_mm: tuple[float, float] = (30.0, 70.0),
) -> PathologyCTPhantom:
    """Paint dense findings into a chest CT phantom (a new phantom; ``ct`` is not modified).

    The chest-wall tumour and the consolidation go into the right lung, the hilar tumour and the effusion
    into the left (a one-lung phantom takes them all in its lung). Each finding is composited with a
    one-voxel partial-volume edge and its own correlated noise.

    Args:
        ct: a chest phantom of :func:`~lungcad_transforms.apps.phantoms.ct.make_ct_phantom` (with its
            ``anatomy``), large enough for the findings: a field of view of an adult chest (~300-400 mm).
        kinds: which findings, from :data:`PATHOLOGY_KINDS`.
        seed: the findings' random draws (size, place, lobulation, noise).
        tumour_diameter_mm: range of the chest-wall tumour's diameter; the hilar one is drawn from its
            lower part (at most 50 mm).

    Returns:
        a :class:`PathologyCTPhantom` with ``lungs`` updated (effusion out) and ``pathology_labels``.

    Raises:
        ValueError: an unknown kind, a phantom without lungs or anatomy, or a finding that does not fit
            (a field of view too small for it).

    Examples:
        >>> from lungcad_transforms.apps.phantoms.ct import make_ct_phantom
        >>> ct = make_ct_phantom((128, 128, 96), spacing=(2.6, 2.6, 3.0), seed=5, n_nodules=0)
        >>> sick = add_pathology(ct, ("chest_wall_tumour", "effusion"), seed=1)  # doctest: +SKIP
        >>> [f.kind for f in sick.findings]  # doctest: +SKIP
        ['chest_wall_tumour', 'effusion']
    """
    bad = [k for k in kinds if k not in PATHOLOGY_KINDS]
    if bad:
        raise ValueError(f"unknown pathology kinds {bad}; known: {PATHOLOGY_KINDS}")
    if ct.anatomy is None or ct.tissues is None or not ct.lungs.any():
        raise ValueError("pathology needs a chest phantom with lungs and its anatomy")
    lo_d, hi_d = (float(v) for v in tumour_diameter_mm)
    if not 0 < lo_d <= hi_d:
        raise ValueError(
            f"tumour_diameter_mm must be (min, max) with 0 < min <= max, got {tumour_diameter_mm}"
        )
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, _STREAM_PATHOLOGY])
    an = ct.anatomy
    sides = (
        {"right": "right", "left": "left"}
        if an.lungs == "both"
        else {"right": an.sides[0], "left": an.sides[0]}
    )
    lungs = ct.lungs.copy()
    tissues = ct.tissues.copy()
    hu = ct.hu.astype(np.float32)
    labels = np.zeros(ct.hu.shape, dtype=np.uint8)
    findings: list[Finding] = []
    contrast = an.contrast
    for kind in PATHOLOGY_KINDS:
        if kind not in kinds:
            continue
        # findings keep 5 mm apart: each is its own case
        free = lungs & ~ndimage.binary_dilation(labels > 0, iterations=max(1, round(5.0 / min(ct.spacing))))
        if kind == "chest_wall_tumour":
            size = float(np.exp(rng.uniform(np.log(lo_d), np.log(hi_d))))
            region, side = _chest_wall_tumour(ct, free, sides["right"], size / 2, rng), sides["right"]
        elif kind == "hilar_tumour":
            size = float(rng.uniform(lo_d, max(lo_d, min(0.5 * (lo_d + hi_d), 50.0))))
            region, side = _hilar_tumour(ct, free, sides["left"], size / 2, rng), sides["left"]
        elif kind == "consolidation":
            side = sides["right"]
            region = _consolidation(ct, free, side, rng)
            size = (
                float(np.ptp(np.argwhere(region) * np.asarray(ct.spacing), axis=0).max())
                if region.any()
                else 0.0
            )
        else:
            side = sides["left"]
            region, size = _effusion(ct, free, side, rng)
        if region is None or np.count_nonzero(region) < 50:
            raise ValueError(
                f"{kind} does not fit in this phantom (field of view {np.multiply(ct.hu.shape, ct.spacing)} mm)"
            )
        label = len(findings) + 1
        base = {"chest_wall_tumour": "tumour", "hilar_tumour": "tumour"}.get(kind, kind)
        target = (_HU_CONTRAST if contrast else _HU).get(base, _HU[base])
        paint = region & (tissues != _T["airway"]) if kind == "consolidation" else region
        box = _box(paint, margin=3)
        # the finding's own voxels in full, a partial-volume edge just outside them
        frac = np.maximum(ndimage.gaussian_filter(paint[box].astype(np.float32), 0.6), paint[box])
        noise = ndimage.gaussian_filter(rng.standard_normal(frac.shape).astype(np.float32), (0.7, 0.7, 0.4))
        noise *= 16.0 / max(float(noise.std()), 1e-6)
        sub = hu[box]
        np.copyto(sub, sub + frac * (target + noise - sub), where=frac > 0.02)
        labels[region] = label
        intrapulmonary = kind != "effusion"
        tissues[paint] = _T["nodule"] if intrapulmonary else _T["fluid"]
        if not intrapulmonary:
            lungs &= ~region
        idx = np.argwhere(region).mean(axis=0)
        centre = tuple(float(v) for v in np.asarray(ct.origin_lps) + idx * np.asarray(ct.spacing))
        findings.append(
            Finding(kind, side, centre, round(size, 1), label, intrapulmonary, int(np.count_nonzero(region)))
        )
    np.clip(hu, -1024, 3071, out=hu)
    return PathologyCTPhantom(
        hu=np.rint(hu).astype(np.int16),
        spacing=ct.spacing,
        origin_lps=ct.origin_lps,
        lungs=lungs,
        nodule_labels=np.where(labels == 0, ct.nodule_labels, 0).astype(np.uint8),
        nodules=list(ct.nodules),
        seriesuid=ct.seriesuid,
        tissues=tissues,
        anatomy=an,
        pathology_labels=labels,
        findings=findings,
    )


def organ_masks(ct: CTPhantom) -> dict[str, np.ndarray]:
    """The heart, liver and stomach voxels of a chest phantom: what a lung mask must leave out.

    Returns:
        ``{"heart": ..., "liver": ..., "stomach": ...}``, boolean arrays of the phantom's shape (the heart's
        blood pool and myocardium; the liver; the stomach's wall, contents and gas).
    """
    if ct.anatomy is None or ct.tissues is None:
        raise ValueError("organ masks need the phantom's anatomy and tissue map")
    an = ct.anatomy
    x, y, z = _world(ct)
    heart = (an.heart_q(x, y, z) <= 1.0) & np.isin(ct.tissues, (_T["blood"], _T["myocardium"]))
    q = sum(((c - m) / r) ** 2 for c, m, r in zip((x, y, z), an.stomach_c, an.stomach_r, strict=True))
    stomach = (q <= 1.0) & np.isin(ct.tissues, (_T["bowel"], _T["gas"]))
    return {"heart": heart, "liver": ct.tissues == _T["liver"], "stomach": stomach}
