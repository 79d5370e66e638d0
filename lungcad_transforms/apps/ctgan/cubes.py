"""Cut an isotropic cube around a world location from a loaded CT, and paste an edited one back."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from monai.utils import convert_to_numpy
from scipy import ndimage

from lungcad_transforms.data.coords import LPS_TO_RAS, inside_volume, world_to_voxel
from lungcad_transforms.errors import InputError

__all__ = [
    "CUBE_SIZE",
    "MASK_SIZE",
    "HU_WINDOW",
    "normalise_hu",
    "denormalise_hu",
    "centre_mask",
    "nodule_sphere",
    "generator_input",
    "cube_points",
    "cut_cube",
    "paste_cube",
]


CUBE_SIZE = 32  # voxels of 1 mm: the cube the GAN sees
MASK_SIZE = 16  # the in-painted centre (mm): the largest nodule it can inject or remove is a bit smaller
HU_WINDOW = (-1000.0, 1000.0)  # scaled to [-1, 1], as CT-GAN scales its cubes


def normalise_hu(hu: np.ndarray, window: Sequence[float] = HU_WINDOW) -> np.ndarray:
    """HU clipped to ``window`` and scaled to [-1, 1].

    Examples:
        >>> normalise_hu(np.array([-2000.0, 0.0, 1000.0])).tolist()
        [-1.0, 0.0, 1.0]
    """
    lo, hi = window
    return (np.clip(hu, lo, hi) - (lo + hi) / 2) / ((hi - lo) / 2)


def denormalise_hu(x: np.ndarray, window: Sequence[float] = HU_WINDOW) -> np.ndarray:
    """The inverse of :func:`normalise_hu` inside the window."""
    lo, hi = window
    return np.asarray(x, dtype=np.float64) * ((hi - lo) / 2) + (lo + hi) / 2


def centre_mask(size: int = CUBE_SIZE, mask_size: int = MASK_SIZE) -> np.ndarray:
    """float32 (size, size, size): 1 in the centred ``mask_size`` box, 0 elsewhere."""
    m = np.zeros((size,) * 3, np.float32)
    a = (size - mask_size) // 2
    m[a : a + mask_size, a : a + mask_size, a : a + mask_size] = 1
    return m


def nodule_sphere(diameter_mm: float, size: int = CUBE_SIZE) -> np.ndarray:
    """float32 (size, size, size): 1 inside a centred sphere of ``diameter_mm`` (1 mm voxels); 0 gives none."""
    c = (size - 1) / 2
    g = np.indices((size,) * 3, dtype=np.float32) - c
    return ((g**2).sum(0) <= (diameter_mm / 2) ** 2).astype(np.float32)


def generator_input(cube_norm: np.ndarray, diameter_mm: float, mask_size: int = MASK_SIZE) -> np.ndarray:
    """The generator's three channels: masked cube, mask, target sphere (diameter 0 for removal)."""
    mask = centre_mask(cube_norm.shape[0], mask_size)
    sphere = nodule_sphere(diameter_mm, cube_norm.shape[0]) if diameter_mm > 0 else np.zeros_like(mask)
    return np.stack([cube_norm * (1 - mask), mask, sphere]).astype(np.float32)


def cube_points(location_lps: Sequence[float], affine_ras: np.ndarray, size: int = CUBE_SIZE) -> np.ndarray:
    """Fractional scan-voxel indices (3, size, size, size) of the 1 mm cube's voxel centres, RAS-aligned."""
    centre_ras = np.asarray(location_lps, dtype=np.float64) * LPS_TO_RAS
    offsets = np.indices((size,) * 3, dtype=np.float64).reshape(3, -1) - (size - 1) / 2
    world = centre_ras[:, None] + offsets
    homogeneous = np.concatenate([world, np.ones((1, world.shape[1]))])
    return np.linalg.solve(affine_ras, homogeneous)[:3].reshape(3, size, size, size)


def _check_location(location_lps, affine, shape, where, size) -> None:
    centre = world_to_voxel(location_lps, affine)
    if not inside_volume(centre, shape)[0]:
        raise InputError(where, f"location {list(map(float, location_lps))} (LPS mm) is outside the scan")
    pts = cube_points(location_lps, affine, size).reshape(3, -1)
    corners = np.stack([pts.min(1), pts.max(1)])
    if not inside_volume(corners, shape).all():
        raise InputError(
            where,
            f"the {size} mm cube around {list(map(float, location_lps))} (LPS mm) crosses the scan border",
        )


def cut_cube(
    hu: np.ndarray,
    affine_ras: np.ndarray,
    location_lps: Sequence[float],
    where: str = "<scan>",
    size: int = CUBE_SIZE,
) -> np.ndarray:
    """The 1 mm isotropic cube (size^3, HU, float32) centred on ``location_lps``, trilinear.

    Raises:
        InputError: the location is outside the scan, or the cube crosses the scan border.
    """
    hu = convert_to_numpy(hu, dtype=np.float32)
    affine = convert_to_numpy(affine_ras, dtype=np.float64)
    _check_location(location_lps, affine, hu.shape, where, size)
    pts = cube_points(location_lps, affine, size)
    return ndimage.map_coordinates(hu, pts, order=1, mode="nearest").astype(np.float32)


def _ramp(c: np.ndarray, lo: float, hi: float, width: float) -> np.ndarray:
    return np.clip(np.minimum(c - lo, hi - c) / width, 0.0, 1.0)


def _noise_residual(region: np.ndarray, sigma_vox: np.ndarray) -> tuple[np.ndarray, float]:
    """The high-frequency residual of ``region`` (flat) and its robust spread (MAD, as a standard deviation)."""
    residual = (region - ndimage.gaussian_filter(region, sigma_vox)).reshape(-1)
    return residual, float(1.4826 * np.median(np.abs(residual - np.median(residual))) + 1e-6)


def _quietest_neighbour(
    hu: np.ndarray, box: tuple[slice, ...], spacing: np.ndarray, mask_size: int, sigma_vox: np.ndarray
) -> tuple[np.ndarray, float] | None:
    """Residual of the least structured of the six boxes one box-width beside ``box`` that fit in the scan."""
    best = None
    for axis in range(3):
        step = int(np.ceil(mask_size / spacing[axis]))
        for sign in (-1, 1):
            shifted = list(box)
            a, b = box[axis].start + sign * step, box[axis].stop + sign * step
            if a < 0 or b > hu.shape[axis]:
                continue
            shifted[axis] = slice(a, b)
            found = _noise_residual(hu[tuple(shifted)].astype(np.float64), sigma_vox)
            if best is None or found[1] < best[1]:
                best = found
    return best


def paste_cube(
    hu: np.ndarray,
    affine_ras: np.ndarray,
    location_lps: Sequence[float],
    generated_hu: np.ndarray,
    mask_size: int = MASK_SIZE,
    blend_mm: float = 3.0,
    noise_sigma_mm: float = 1.0,
    texture: str = "local",
) -> tuple[np.ndarray, tuple[slice, slice, slice]]:
    """Paste a generated cube's centre back into the scan; return the new scan and the voxel box touched.

    Inside the in-painted box the weight ramps from 0 at its faces to 1 over ``blend_mm`` (blended edges);
    voxels outside the box are left bit for bit. The generated values are low-passed and a high-frequency
    residual of the scan (its noise texture, clipped at 3 robust standard deviations) is added back,
    so the edit carries the scanner noise of its neighbourhood rather than the GAN's smoother one.
    ``texture="local"`` takes that residual from the box itself (injection: lung with no nodule yet);
    ``"neighbour"`` from the least structured of the six adjacent boxes inside the scan (removal: the
    box's own residual holds the edges of the nodule being removed, which would be pasted back as a
    faint nodule outline), falling back to the box itself when none fits.
    """
    if texture not in ("local", "neighbour"):
        raise ValueError(f"texture must be 'local' or 'neighbour', got {texture!r}")
    hu = convert_to_numpy(hu, dtype=np.float32)
    affine = convert_to_numpy(affine_ras, dtype=np.float64)
    size = generated_hu.shape[0]
    pts = cube_points(location_lps, affine, size).reshape(3, -1)
    lo, hi = (size - mask_size) / 2 - 0.5, (size + mask_size) / 2 - 0.5  # the mask box in cube voxels
    inner = np.indices((size,) * 3).reshape(3, -1)
    in_box = np.all((inner >= lo) & (inner <= hi), axis=0)
    box_pts = pts[:, in_box]
    start = np.maximum(np.floor(box_pts.min(1)).astype(int), 0)
    stop = np.minimum(np.ceil(box_pts.max(1)).astype(int) + 1, hu.shape)
    box = tuple(slice(int(a), int(b)) for a, b in zip(start, stop, strict=True))
    vox = np.indices(stop - start).reshape(3, -1) + start[:, None]
    world = affine[:3, :3] @ vox + affine[:3, 3:4]
    centre_ras = np.asarray(location_lps, dtype=np.float64) * LPS_TO_RAS
    cube_coord = world - centre_ras[:, None] + (size - 1) / 2  # RAS-aligned 1 mm cube
    weight = np.prod([_ramp(cube_coord[a], lo, hi, blend_mm) for a in range(3)], axis=0)
    smooth_gen = ndimage.gaussian_filter(generated_hu.astype(np.float64), noise_sigma_mm)
    gen_at = ndimage.map_coordinates(smooth_gen, cube_coord, order=1, mode="nearest")
    region = hu[box].astype(np.float64)
    spacing = np.sqrt((affine[:3, :3] ** 2).sum(0))
    sigma_vox = noise_sigma_mm / spacing
    found = _quietest_neighbour(hu, box, spacing, mask_size, sigma_vox) if texture == "neighbour" else None
    residual, spread = found if found is not None else _noise_residual(region, sigma_vox)
    # clipped at 3 robust spreads: structure edges in the residual are cut, noise is kept
    residual = np.clip(residual, -3 * spread, 3 * spread)
    old = region.reshape(-1)
    new = (1 - weight) * old + weight * (gen_at + residual)
    out = hu.copy()
    changed = weight > 0
    flat = out[box].reshape(-1)
    flat[changed] = new[changed]
    out[box] = flat.reshape(out[box].shape)
    return out, box
