"""Drawing the patient a phantom images: its grid, its anatomy and its nodules, from a seed.

:func:`make_anatomy` draws, from ``seed`` alone, a scanner-like grid (spacing, origin) where none is
given, the anatomy laid out for that grid's world box, the vessel and airway trees, and the nodule kinds
and places. :func:`patient_for` is what every phantom maker calls: that, or the patient of a
``reference`` phantom on a new grid covering the same world box, for co-registered images. Series UIDs
are derived from the same arguments, so they are deterministic too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from pydicom.uid import generate_uid

from lungcad_transforms.apps.phantoms.anatomy import Anatomy
from lungcad_transforms.apps.phantoms.grid import Grid, validate_grid
from lungcad_transforms.apps.phantoms.results import NODULE_KINDS, CTPhantom, MRPhantom, PETPhantom
from lungcad_transforms.apps.phantoms.seeding import (
    STREAM_ANATOMY,
    STREAM_NODULES,
    STREAM_SPACING,
    stream_rng,
)

__all__ = ["make_anatomy"]


def _normalise_lungs(lungs: bool | str) -> str:
    if lungs is True:
        return "both"
    if lungs is False or lungs is None:
        return "none"
    if lungs not in ("both", "left", "right", "none"):
        raise ValueError(f"lungs must be True/False or one of 'both', 'left', 'right', 'none'; got {lungs!r}")
    return str(lungs)


def _draw_ct_spacing(seed: int) -> tuple[float, float, float]:
    rng = stream_rng(seed, STREAM_SPACING)
    # in-plane: a reconstruction field of view of 307..461 mm on a 512 matrix; slices as scanners offer
    in_plane = float(rng.integers(307, 462)) / 512.0
    slice_mm = float(rng.choice([0.625, 1.0, 1.25, 1.5, 2.0, 2.5]))
    return (in_plane, in_plane, slice_mm)


def _default_origin(seed: int, shape: Sequence[int], spacing: Sequence[float]) -> tuple[float, float, float]:
    rng = stream_rng(seed, STREAM_SPACING, 1)
    half = 0.5 * (np.asarray(shape) - 1) * np.asarray(spacing)
    x0 = -half[0] + round(float(rng.uniform(-5, 5)), 1)
    y0 = -half[1] + round(float(rng.uniform(-20, 5)), 1)
    z0 = round(float(rng.uniform(-350, -100)), 1)
    return (float(x0), float(y0), float(z0))


def _kinds_for(
    rng: np.random.Generator, n_nodules: int | None, nodule_kinds: Sequence[str] | None
) -> list[str]:
    if nodule_kinds is not None:
        kinds = [str(k) for k in nodule_kinds]
        bad = [k for k in kinds if k not in NODULE_KINDS]
        if bad:
            raise ValueError(f"unknown nodule kinds {bad}; known: {NODULE_KINDS}")
        if n_nodules is None:
            return kinds
        if n_nodules > 0 and not kinds:
            raise ValueError("nodule_kinds is empty but n_nodules > 0")
        return [kinds[i % len(kinds)] for i in range(int(n_nodules))]
    n = int(rng.integers(1, 5)) if n_nodules is None else int(n_nodules)
    if n < 0:
        raise ValueError(f"n_nodules must be >= 0, got {n_nodules}")
    weights = np.array([0.35, 0.15, 0.15, 0.2, 0.15])
    return [str(k) for k in rng.choice(NODULE_KINDS, size=n, p=weights)]


def series_uid(modality: str, seed: int, grid: Grid, *extra: object) -> str:
    """A valid DICOM UID, the same for the same modality, seed, grid and ``extra`` arguments."""
    sources = [
        "lungcad-phantom",
        modality,
        str(int(seed)),
        repr(grid.shape),
        repr(grid.spacing),
        repr(grid.origin),
    ]
    sources += [repr(e) for e in extra]
    return generate_uid(entropy_srcs=sources)


def make_anatomy(
    shape: Sequence[int] = (128, 128, 128),
    spacing: Sequence[float] | None = None,
    seed: int = 0,
    n_nodules: int | None = None,
    nodule_kinds: Sequence[str] | None = None,
    lungs: bool | str = True,
    contrast: bool | None = None,
    nodule_diameter_mm: tuple[float, float] = (3.0, 30.0),
    origin_lps: Sequence[float] | None = None,
) -> tuple[Anatomy, Grid]:
    """Draw a patient (anatomy, vessel trees, nodules) for a voxel grid; see :func:`make_ct_phantom`.

    Returns the anatomy and the grid it was laid out on (nodule centres sit on its voxel centres).

    Examples:
        >>> an, grid = make_anatomy((64, 64, 32), seed=0, nodule_kinds=("solid",))
        >>> grid.shape, [n.kind for n in an.nodules], an.lungs
        ((64, 64, 32), ['solid'], 'both')
    """
    shape_t = validate_grid(shape, spacing)
    lungs_s = _normalise_lungs(lungs)
    spacing_t = _draw_ct_spacing(seed) if spacing is None else tuple(float(s) for s in spacing)
    origin = (
        _default_origin(seed, shape_t, spacing_t)
        if origin_lps is None
        else tuple(float(o) for o in origin_lps)
    )
    grid = Grid(shape_t, spacing_t, origin)  # type: ignore[arg-type]
    rng = stream_rng(seed, STREAM_ANATOMY)
    if contrast is None:
        contrast = bool(rng.random() < 0.3)
    lo_d, hi_d = (float(v) for v in nodule_diameter_mm)
    if not 0 < lo_d <= hi_d:
        raise ValueError(
            f"nodule_diameter_mm must be (min, max) with 0 < min <= max, got {nodule_diameter_mm}"
        )
    an = Anatomy(rng, grid.box_lo, grid.box_hi, lungs_s, contrast, voxel_mm=spacing_t)
    an.grow_trees(rng)
    nod_rng = stream_rng(seed, STREAM_NODULES)
    if lungs_s == "none":
        if n_nodules or nodule_kinds:
            raise ValueError("a phantom without lungs cannot hold nodules (n_nodules must be 0 or None)")
        kinds: list[str] = []
    else:
        kinds = _kinds_for(nod_rng, n_nodules, nodule_kinds)
    an.place_nodules(nod_rng, kinds, (lo_d, hi_d), grid)
    an.seed = int(seed)  # a phantom made with this anatomy as reference draws its noise from it
    return an, grid


def reference_grid(
    reference: CTPhantom | PETPhantom | MRPhantom, shape: Sequence[int], spacing: Sequence[float] | None
) -> tuple[Anatomy, Grid]:
    """The reference's anatomy and a grid of ``shape`` covering its world box (``spacing`` follows)."""
    an = reference.anatomy
    if an is None:
        raise ValueError("the reference phantom carries no anatomy")
    shape_t = validate_grid(shape, None)
    size = an.box_hi - an.box_lo
    sp = size / np.asarray(shape_t)
    if spacing is not None and not np.allclose(spacing, sp, rtol=1e-6):
        raise ValueError(
            f"with a reference, spacing follows from shape: {tuple(sp)} for {shape_t}, got {spacing}"
        )
    origin = an.box_lo + 0.5 * sp
    return an, Grid(shape_t, tuple(float(s) for s in sp), tuple(float(o) for o in origin))  # type: ignore[arg-type]


def patient_for(
    reference: CTPhantom | PETPhantom | MRPhantom | None,
    shape: Sequence[int],
    spacing: Sequence[float] | None,
    seed: int,
    draw_spacing: Callable[[int], tuple[float, float, float]] | None = None,
    **anatomy_kwargs: Any,
) -> tuple[Anatomy, Grid, int]:
    """The anatomy and grid a phantom maker images, and the seed its image noise is drawn from.

    Args:
        reference: a phantom whose patient to image on a grid of ``shape`` covering the same world box
            (``spacing``, if given, must agree); its seed is returned. ``None``: a new patient.
        shape, spacing, seed: as for :func:`make_anatomy`.
        draw_spacing: for a new patient without ``spacing``, draws one from the seed (a PET or MR
            scanner's); ``None`` lets :func:`make_anatomy` draw a CT-like one.
        anatomy_kwargs: more arguments of :func:`make_anatomy` (``n_nodules``, ``lungs``, ...).
    """
    if reference is not None:
        an, grid = reference_grid(reference, shape, spacing)
        return an, grid, an.seed
    if spacing is None and draw_spacing is not None:
        spacing = draw_spacing(seed)
    an, grid = make_anatomy(shape, spacing, seed, **anatomy_kwargs)
    return an, grid, seed
