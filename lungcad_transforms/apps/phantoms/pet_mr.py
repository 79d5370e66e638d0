"""Synthetic FDG PET (SUV) and T1-weighted MR phantoms: :func:`make_pet_phantom`, :func:`make_mr_phantom`.

Both image a patient like the CT phantoms do, a new one or a ``reference`` phantom's (then the images
are co-registered with it): the rendered tissue map becomes uptake or signal through the case's tissue
values (:func:`~lungcad_transforms.apps.phantoms.tissues.pet_lut`, ``mr_lut``), lung vessels and
lesions are composited at sub-voxel precision, and each modality adds its own physics: the PET
scanner's resolution and count noise, the MR coil's bias field and Rician noise. The lesions are the
anatomy's nodules, with the same centres and diameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import ndimage

from lungcad_transforms.apps.phantoms.anatomy import Anatomy
from lungcad_transforms.apps.phantoms.draw import patient_for, series_uid
from lungcad_transforms.apps.phantoms.grid import Grid
from lungcad_transforms.apps.phantoms.render import Rendered
from lungcad_transforms.apps.phantoms.results import CTPhantom, MRPhantom, PETPhantom
from lungcad_transforms.apps.phantoms.seeding import STREAM_MR, STREAM_PET, STREAM_SPACING, stream_rng
from lungcad_transforms.apps.phantoms.tissues import _T, mr_lut, pet_lut

__all__ = ["make_pet_phantom", "make_mr_phantom"]


def _draw_pet_spacing(seed: int) -> tuple[float, float, float]:
    rng = stream_rng(seed, STREAM_SPACING, 2)
    in_plane = float(rng.uniform(2.0, 4.1))
    return (in_plane, in_plane, float(rng.choice([2.0, 2.5, 3.0, 3.27, 4.0])))


def _draw_mr_spacing(seed: int) -> tuple[float, float, float]:
    rng = stream_rng(seed, STREAM_SPACING, 3)
    in_plane = float(rng.uniform(0.9, 1.6))
    return (in_plane, in_plane, float(rng.choice([3.0, 4.0, 5.0, 6.0])))


# PET and MR lesions start at 8 mm: at these modalities' resolution a smaller one would blur away.
_LESION_DIAMETER_MM = (8.0, 30.0)


_SCANNERS = {"pet": (_draw_pet_spacing, STREAM_PET), "mr": (_draw_mr_spacing, STREAM_MR)}


def _lesion_patient(
    reference: CTPhantom | PETPhantom | MRPhantom | None,
    shape: Sequence[int],
    spacing: Sequence[float] | None,
    seed: int,
    n_lesions: int | None,
    lungs: bool | str,
    modality: str,
) -> tuple[Anatomy, Grid, int, np.random.Generator, Rendered]:
    """The patient a PET or MR phantom images, rendered on its grid, and the modality's random stream.

    Returns the anatomy, the grid, the seed (the reference's when there is one), the generator the image
    noise is drawn from (one stream per modality, so a PET and an MR of one patient differ) and the render.
    """
    draw_spacing, stream = _SCANNERS[modality]
    an, grid, seed = patient_for(
        reference,
        shape,
        spacing,
        seed,
        draw_spacing,
        n_nodules=n_lesions,
        lungs=lungs,
        nodule_diameter_mm=_LESION_DIAMETER_MM,
    )
    return an, grid, seed, stream_rng(seed, stream, *grid.shape), an.render(grid)


def _lesion_fields(modality: str, seed: int, an: Anatomy, grid: Grid, r: Rendered) -> dict[str, Any]:
    """The fields a PET and an MR phantom share: the lesions and the patient's grid, tissues and UID."""
    return {
        "lesion_labels": r.nodule_labels,
        "lesions": list(an.nodules),
        "spacing": grid.spacing,
        "origin_lps": grid.origin,
        "seriesuid": series_uid(modality, seed, grid, an.nodules),
        "tissues": r.tissues,
        "anatomy": an,
    }


def _tissue_image(r: Rendered, lut: np.ndarray) -> np.ndarray:
    # the tissue values, with the lung vessels mixed in by their partial volume
    return lut[r.tissues] * (1 - r.vessel_frac) + r.vessel_frac * lut[_T["vessel"]]


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
        >>> from lungcad_transforms.apps.phantoms import make_ct_phantom
        >>> ct = make_ct_phantom((96, 96, 64), seed=1, n_nodules=2)
        >>> pet = make_pet_phantom((48, 48, 32), reference=ct)
        >>> [l.center_lps for l in pet.lesions] == [n.center_lps for n in ct.nodules]
        True
    """
    an, grid, seed, rng, r = _lesion_patient(reference, shape, spacing, seed, n_lesions, lungs, "pet")
    suv = _tissue_image(r, pet_lut(rng))
    lesion_suv = []
    for spec, (sl, frac, _) in zip(an._nodule_specs, r.nodule_frac, strict=True):
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
    return PETPhantom(suv=suv, lesion_suv=lesion_suv, **_lesion_fields("PT", seed, an, grid, r))


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
        >>> from lungcad_transforms.apps.phantoms import TISSUES
        >>> mr = make_mr_phantom((64, 64, 24), seed=2)
        >>> fat, muscle = mr.intensity[mr.tissues == TISSUES["fat"]], mr.intensity[mr.tissues == TISSUES["muscle"]]
        >>> bool(fat.mean() > 2 * muscle.mean())
        True
    """
    an, grid, seed, rng, r = _lesion_patient(reference, shape, spacing, seed, n_lesions, lungs, "mr")
    lut = mr_lut(rng)
    img = _tissue_image(r, lut)
    for sl, frac, _ in r.nodule_frac:
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
    return MRPhantom(intensity=img, **_lesion_fields("MR", seed, an, grid, r))
