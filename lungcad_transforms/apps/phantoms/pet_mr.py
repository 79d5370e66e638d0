"""Synthetic PET (SUV) and MR phantoms on the CT phantom's anatomy."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from lungcad_transforms.apps.phantoms.anatomy import Anatomy
from lungcad_transforms.apps.phantoms.draw import _reference_grid, _series_uid, make_anatomy
from lungcad_transforms.apps.phantoms.grid import _Grid, _rng
from lungcad_transforms.apps.phantoms.tissues import (
    _MR_T1,
    _N_TISSUES,
    _PET_SUV,
    _STREAM_MR,
    _STREAM_PET,
    _STREAM_SPACING,
    _T,
    TISSUES,
    CTPhantom,
    MRPhantom,
    PETPhantom,
)

__all__ = ["make_pet_phantom", "make_mr_phantom"]


def _draw_pet_spacing(seed: int) -> tuple[float, float, float]:
    rng = _rng(seed, _STREAM_SPACING, 2)
    in_plane = float(rng.uniform(2.0, 4.1))
    return (in_plane, in_plane, float(rng.choice([2.0, 2.5, 3.0, 3.27, 4.0])))


def _draw_mr_spacing(seed: int) -> tuple[float, float, float]:
    rng = _rng(seed, _STREAM_SPACING, 3)
    in_plane = float(rng.uniform(0.9, 1.6))
    return (in_plane, in_plane, float(rng.choice([3.0, 4.0, 5.0, 6.0])))


def _lesion_labels(an: Anatomy, grid: _Grid):
    labels = np.zeros(grid.shape, dtype=np.uint8)
    fracs = []
    h = grid.soft_width
    for n, spec in enumerate(an._nodule_specs, start=1):
        r_max = spec.radius * (1 + spec.lobe_amp) + h
        sl = grid.bbox(spec.center - r_max, spec.center + r_max)
        if sl is None:
            fracs.append((None, None))
            continue
        lx, ly, lz = grid.local_coords(sl)
        sd = spec.signed(lx, ly, lz)
        np.copyto(labels[sl], np.uint8(n), where=sd <= 0)
        fracs.append((sl, np.clip(0.5 - sd / h, 0, 1).astype(np.float32)))
    return labels, fracs


def make_pet_phantom(
    shape: Sequence[int] = (96, 96, 64),
    spacing: Sequence[float] | None = None,
    seed: int = 0,
    n_lesions: int | None = None,
    *,
    lungs: bool | str = True,
    reference: CTPhantom | PETPhantom | MRPhantom | None = None,
    fwhm_mm: float | None = None,
    noise: float = 0.15,
) -> PETPhantom:
    """A synthetic FDG PET (body-weight SUV, float32) with physiological uptake and hot lesions.

    Uptake: background soft tissue 0.5..1, fat 0.3, lungs 0.4, blood pool ~1.7, liver ~2.2, spleen,
    kidneys, bone marrow, a myocardium of varying avidity (1.5..8), the bladder (abdomen phantoms) very
    hot; the brain is never in a chest field of view and is not modelled. Lesions are the nodules of the
    anatomy with a peak SUV of 3..15, blurred by the scanner's resolution (``fwhm_mm``, drawn 5..7 mm)
    with multiplicative noise (``noise`` relative standard deviation at SUV 1).

    Args:
        shape: voxels (X, Y, Z).
        spacing: mm; ``None`` draws a PET-like one (in-plane 2..4.1 mm, slices 2..4 mm).
        seed: everything random is drawn from it.
        n_lesions: lesions placed like CT nodules; ``None`` draws 1..4.
        lungs: as for :func:`make_ct_phantom`.
        reference: a phantom whose patient to image (same world box, anatomy and lesions), e.g. a
            :class:`CTPhantom` for a PET/CT pair.

    Examples:
        >>> ct = make_ct_phantom((96, 96, 64), seed=1, n_nodules=2)
        >>> pet = make_pet_phantom((48, 48, 32), reference=ct)
        >>> [l.center_lps for l in pet.lesions] == [n.center_lps for n in ct.nodules]
        True
    """
    if reference is not None:
        an, grid = _reference_grid(reference, shape, spacing)
        seed = an.seed
    else:
        sp = _draw_pet_spacing(seed) if spacing is None else spacing
        an, grid = make_anatomy(shape, sp, seed, n_lesions, None, lungs, None, (8.0, 30.0))
    rng = _rng(seed, _STREAM_PET, *grid.shape)
    r = an.render(grid)
    lut = np.zeros(_N_TISSUES, dtype=np.float32)
    for name, code in TISSUES.items():
        lut[code] = _PET_SUV[name] * (rng.uniform(0.85, 1.15) if _PET_SUV[name] > 0 else 0.0)
    lut[_T["myocardium"]] = rng.uniform(1.5, 8.0)
    lut[_T["bladder"]] = rng.uniform(15.0, 40.0)
    suv = lut[r.tissues]
    suv = suv * (1 - r.vessel_frac) + r.vessel_frac * lut[_T["vessel"]]
    labels, fracs = _lesion_labels(an, grid)
    lesion_suv = []
    for spec, (sl, frac) in zip(an._nodule_specs, fracs, strict=True):
        peak = float(rng.uniform(3.0, 6.0) if spec.nodule.kind == "ground_glass" else rng.uniform(4.0, 15.0))
        lesion_suv.append(round(peak, 3))
        if sl is not None:
            suv[sl] += frac * (peak - suv[sl])
    fwhm = float(rng.uniform(5.0, 7.0)) if fwhm_mm is None else float(fwhm_mm)
    sigma = [fwhm / 2.3548 / s for s in grid.spacing]
    suv = ndimage.gaussian_filter(suv, sigma=sigma, truncate=3.0)
    # count statistics: noise grows with the square root of the uptake; PET noise is blobby
    field_ = ndimage.gaussian_filter(rng.standard_normal(grid.shape, dtype=np.float32), sigma=0.7)
    field_ /= max(float(field_.std()), 1e-6)
    suv = suv + noise * np.sqrt(np.maximum(suv, 0.05)) * field_
    suv = np.maximum(suv, 0).astype(np.float32)
    uid = _series_uid("PT", seed, grid, an.nodules)
    return PETPhantom(
        suv, grid.spacing, grid.origin, labels, list(an.nodules), lesion_suv, uid, r.tissues, an
    )


def make_mr_phantom(
    shape: Sequence[int] = (128, 128, 48),
    spacing: Sequence[float] | None = None,
    seed: int = 0,
    n_lesions: int | None = None,
    *,
    lungs: bool | str = True,
    reference: CTPhantom | PETPhantom | MRPhantom | None = None,
    noise_std: float | None = None,
) -> MRPhantom:
    """A synthetic T1-weighted MR (float32, arbitrary units 0..~1100) with tissue contrast and lesions.

    Fat and fatty marrow are bright, muscle and myocardium intermediate, lungs, air, cortical bone and
    flowing blood dark; a smooth coil bias field and Rician noise (``noise_std``, drawn 10..20) on top.

    Args:
        shape: voxels (X, Y, Z).
        spacing: mm; ``None`` draws an MR-like one (in-plane 0.9..1.6 mm, slices 3..6 mm).
        seed: everything random is drawn from it.
        n_lesions: lesions placed like CT nodules; ``None`` draws 1..4.
        lungs: as for :func:`make_ct_phantom`.
        reference: a phantom whose patient to image, e.g. a :class:`PETPhantom` for an MR/PET pair.

    Examples:
        >>> mr = make_mr_phantom((64, 64, 24), seed=2)
        >>> fat, muscle = mr.intensity[mr.tissues == TISSUES["fat"]], mr.intensity[mr.tissues == TISSUES["muscle"]]
        >>> bool(fat.mean() > 2 * muscle.mean())
        True
    """
    if reference is not None:
        an, grid = _reference_grid(reference, shape, spacing)
        seed = an.seed
    else:
        sp = _draw_mr_spacing(seed) if spacing is None else spacing
        an, grid = make_anatomy(shape, sp, seed, n_lesions, None, lungs, None, (8.0, 30.0))
    rng = _rng(seed, _STREAM_MR, *grid.shape)
    r = an.render(grid)
    lut = np.zeros(_N_TISSUES, dtype=np.float32)
    for name, code in TISSUES.items():
        lut[code] = _MR_T1[name] * rng.uniform(0.92, 1.08)
    img = lut[r.tissues]
    img = img * (1 - r.vessel_frac) + r.vessel_frac * lut[_T["vessel"]]
    labels, fracs = _lesion_labels(an, grid)
    for sl, frac in fracs:
        if sl is not None:
            img[sl] += frac * (lut[_T["nodule"]] - img[sl])
    img = ndimage.gaussian_filter(img, sigma=0.5, truncate=3.0)
    # receive-coil bias: a smooth multiplicative field, brighter near the anterior coil
    x, y, z = grid.open_coords()
    lo, hi = grid.box_lo, grid.box_hi
    u = (x - 0.5 * (lo[0] + hi[0])) / (hi[0] - lo[0])
    v = (y - 0.5 * (lo[1] + hi[1])) / (hi[1] - lo[1])
    w = (z - 0.5 * (lo[2] + hi[2])) / (hi[2] - lo[2])
    c = rng.uniform(-0.25, 0.25, size=5)
    bias = 1.0 + c[0] * u - abs(c[1]) * v + c[2] * w + c[3] * u * u + c[4] * v * v
    img = img * bias.astype(np.float32)
    sigma_n = float(rng.uniform(10, 20)) if noise_std is None else float(noise_std)
    n1 = rng.standard_normal(grid.shape, dtype=np.float32) * sigma_n
    n2 = rng.standard_normal(grid.shape, dtype=np.float32) * sigma_n
    img = np.sqrt((img + n1) ** 2 + n2**2).astype(np.float32)
    uid = _series_uid("MR", seed, grid, an.nodules)
    return MRPhantom(img, grid.spacing, grid.origin, labels, list(an.nodules), uid, r.tissues, an)
