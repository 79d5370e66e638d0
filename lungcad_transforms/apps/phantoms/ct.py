"""Synthetic chest CT phantoms with known lungs and nodules: :func:`make_ct_phantom`.

The patient's rendered tissue map (:mod:`~lungcad_transforms.apps.phantoms.render`) becomes Hounsfield
units through the case's CT values (:func:`~lungcad_transforms.apps.phantoms.tissues.ct_lut`), with
parenchymal texture, gravity-dependent lung density, partial-volume compositing of fissures, vessels,
airway walls and nodules (ground glass veils the lung, a part-solid nodule has a solid core), the
reconstruction kernel's blur and correlated quantum noise.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from lungcad_transforms.apps.phantoms.anatomy import Anatomy
from lungcad_transforms.apps.phantoms.draw import patient_for, series_uid
from lungcad_transforms.apps.phantoms.grid import Grid
from lungcad_transforms.apps.phantoms.results import CTPhantom, MRPhantom, PETPhantom
from lungcad_transforms.apps.phantoms.seeding import STREAM_CT, stream_rng
from lungcad_transforms.apps.phantoms.tissues import _T, ct_lut

__all__ = ["make_ct_phantom"]


def _smooth_noise(rng: np.random.Generator, shape: Sequence[int], factor: int = 4) -> np.ndarray:
    """Unit-variance random field correlated over a few voxels (cheap: drawn coarse, then interpolated).

    scipy has no band-limited noise generator; filtering a coarse white field and zooming it is the
    usual trick and costs a small fraction of filtering a full-size one."""
    coarse_shape = [max(2, -(-int(s) // factor) + 1) for s in shape]
    coarse = ndimage.gaussian_filter(rng.standard_normal(coarse_shape, dtype=np.float32), 0.8)
    zoom = [int(s) / c for s, c in zip(shape, coarse_shape, strict=True)]
    field_ = ndimage.zoom(coarse, zoom, order=1, grid_mode=True, mode="nearest")
    field_ = field_[: shape[0], : shape[1], : shape[2]]
    if field_.shape != tuple(shape):  # zoom rounds the output size
        pad = [(0, int(s) - f) for s, f in zip(shape, field_.shape, strict=True)]
        field_ = np.pad(field_, pad, mode="edge")
    std = float(field_.std()) or 1.0
    return ((field_ - field_.mean()) / std).astype(np.float32)


def _render_ct(an: Anatomy, grid: Grid, rng: np.random.Generator, noise_std: float, fov_circle: bool):
    r = an.render(grid)
    lut = ct_lut(rng, an.contrast)
    hu = lut[r.tissues]
    texture = _smooth_noise(rng, grid.shape, factor=3)
    # tissue texture: lungs show gravity-dependent density (denser at the back) and parenchymal
    # mottling; fat and muscle vary a little
    lung = (r.tissues == _T["lung"]) | (r.tissues == _T["nodule"])
    gradient = 50.0 * np.clip((r.y - (an.cy - an.bc)) / (2 * an.bc), 0, 1)
    hu += np.where(lung, gradient + 22.0 * texture, 0.0).astype(np.float32)
    soft = (r.tissues == _T["fat"]) | (r.tissues == _T["muscle"]) | (r.tissues == _T["liver"])
    hu += np.where(soft, 6.0 * texture, 0.0).astype(np.float32)

    # partial-volume compositing of the thin structures
    hu += 0.35 * r.fissure_frac * (lut[_T["airway_wall"]] - hu)
    vessel_hu = lut[_T["vessel"]]
    np.multiply(hu, 1 - r.vessel_frac, out=hu)
    hu += r.vessel_frac * vessel_hu
    wall_hu, air_hu = lut[_T["airway_wall"]], lut[_T["airway"]]
    outer = np.maximum(r.airway_outer - r.airway_lumen, 0)
    hu = hu * (1 - r.airway_outer) + outer * wall_hu + r.airway_lumen * air_hu
    for spec, (sl, frac, core) in zip(an._nodule_specs, r.nodule_frac, strict=True):
        if sl is None:
            continue
        sub = hu[sl]
        tex = texture[sl]
        kind = spec.nodule.kind
        if kind in ("ground_glass", "part_solid"):
            ggo = spec.hu_ggo + 35.0 * tex
            # ground glass veils the lung but leaves the vessels running through it visible
            target = np.maximum(sub, ggo)
            sub += frac * (target - sub)
            if core is not None:
                sub += core * (spec.hu_solid + 10.0 * tex - sub)
        else:
            sub += frac * (spec.hu_solid + 12.0 * tex - sub)
        hu[sl] = sub

    # the reconstruction kernel's blur, then correlated quantum noise
    hu = ndimage.gaussian_filter(hu, sigma=(0.55, 0.55, 0.35), truncate=3.0)
    noise = ndimage.gaussian_filter(
        rng.standard_normal(grid.shape, dtype=np.float32), sigma=(0.6, 0.6, 0.3), truncate=3.0
    )
    noise *= noise_std / max(float(noise.std()), 1e-6)
    hu += noise
    np.clip(hu, -1024, 3071, out=hu)
    out = np.rint(hu).astype(np.int16)
    if fov_circle:
        lo, hi = grid.box_lo, grid.box_hi
        c = 0.5 * (lo + hi)
        radius = 0.5 * min(hi[0] - lo[0], hi[1] - lo[1])
        x, y, _ = grid.open_coords()
        outside = ((x - c[0]) ** 2 + (y - c[1]) ** 2)[:, :, 0] > radius * radius
        out[outside] = -2048
    return out, r


def make_ct_phantom(
    shape: Sequence[int] = (128, 128, 128),
    spacing: Sequence[float] | None = None,
    seed: int = 0,
    n_nodules: int | None = None,
    nodule_kinds: Sequence[str] | None = None,
    *,
    lungs: bool | str = True,
    contrast: bool | None = None,
    noise_std: float | None = None,
    fov_circle: bool = False,
    nodule_diameter_mm: tuple[float, float] = (3.0, 30.0),
    origin_lps: Sequence[float] | None = None,
    reference: CTPhantom | PETPhantom | MRPhantom | None = None,
    pathology: Sequence[str] | None = None,
) -> CTPhantom:
    """A synthetic chest CT in Hounsfield units with known lungs and nodules.

    Args:
        shape: voxels (X, Y, Z), at least 16x16x8.
        spacing: voxel size in mm; ``None`` draws it from ``seed`` like a real scanner (in-plane
            0.6..0.9 mm, slices 0.625..2.5 mm).
        seed: everything random is drawn from it.
        n_nodules: how many nodules; ``None`` draws 1..4 (or one per entry of ``nodule_kinds``).
        nodule_kinds: kinds from :data:`NODULE_KINDS`. Without ``n_nodules``, one nodule per entry in
            that order; with it, the kinds are used in turn. ``None`` draws kinds at random.
        lungs: ``True``/"both", "left" or "right" (the other side filled with fluid), or
            ``False``/"none": an abdomen slab (liver, kidneys, bowel with gas, bladder) with no lung.
        contrast: contrast-enhanced blood pool and organs; ``None`` draws it (30 %).
        noise_std: standard deviation of the (spatially correlated) noise in HU; ``None`` draws 15..25.
        fov_circle: set the voxels outside the scanner's circular field of view (the circle inscribed
            in the in-plane extent) to the padding value -2048, as real scanners do. Off by default.
        nodule_diameter_mm: (min, max) of the log-uniform nodule diameters; a diameter is clipped to
            what fits in the lungs of this field of view.
        origin_lps: world position of voxel (0, 0, 0); ``None`` draws a scanner-like one.
        reference: another phantom whose patient to image: the CT covers the same world box with
            ``shape`` voxels (``spacing`` and ``origin_lps`` follow from it) and shows the same anatomy
            and nodules.
        pathology: opt-in dense findings (kinds of
            :data:`~lungcad_transforms.apps.phantoms.pathology.PATHOLOGY_KINDS`) painted in by
            :func:`~lungcad_transforms.apps.phantoms.pathology.add_pathology` with this ``seed``; the
            result is then a ``PathologyCTPhantom``. ``None`` (default): none, the phantom is unchanged.

    Returns:
        a :class:`CTPhantom`.

    Examples:
        >>> ct = make_ct_phantom((96, 96, 64), seed=3, nodule_kinds=("solid", "ground_glass"))
        >>> ct.hu.dtype, ct.hu.shape, [n.kind for n in ct.nodules]
        (dtype('int16'), (96, 96, 64), ['solid', 'ground_glass'])
        >>> bool(-950 < ct.hu[ct.lungs & (ct.nodule_labels == 0)].mean() < -650)
        True
    """
    an, grid, seed = patient_for(
        reference,
        shape,
        spacing,
        seed,
        n_nodules=n_nodules,
        nodule_kinds=nodule_kinds,
        lungs=lungs,
        contrast=contrast,
        nodule_diameter_mm=nodule_diameter_mm,
        origin_lps=origin_lps,
    )
    rng = stream_rng(seed, STREAM_CT, *grid.shape)
    if noise_std is None:
        noise_std = float(rng.uniform(15, 25))
    hu, r = _render_ct(an, grid, rng, float(noise_std), bool(fov_circle))
    uid = series_uid("CT", seed, grid, an.lungs, an.nodules, noise_std, fov_circle, an.contrast)
    phantom = CTPhantom(
        hu=hu,
        spacing=grid.spacing,
        origin_lps=grid.origin,
        lungs=r.lungs,
        nodule_labels=r.nodule_labels,
        nodules=list(an.nodules),
        seriesuid=uid,
        tissues=r.tissues,
        anatomy=an,
    )
    if pathology:
        from lungcad_transforms.apps.phantoms.pathology import add_pathology

        return add_pathology(phantom, tuple(pathology), seed=seed)
    return phantom
