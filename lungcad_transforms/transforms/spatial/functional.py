"""Multi-scale physical patch sampling around world-coordinate candidates."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from monai.data import MetaTensor
from monai.data.utils import affine_to_spacing
from monai.transforms import Resample, ScaleIntensityRange
from monai.utils import convert_to_numpy

__all__ = [
    "DEFAULT_SCALES_MM",
    "DEFAULT_PATCH_SIZE",
    "DEFAULT_HU_WINDOW",
    "PATCH_KEYS",
    "patch_affines",
    "extract_multiscale_patches",
]


DEFAULT_SCALES_MM: tuple[tuple[float, float, float], ...] = (
    (20.0, 20.0, 12.0),
    (30.0, 30.0, 18.0),
    (40.0, 40.0, 24.0),
)


DEFAULT_PATCH_SIZE: tuple[int, int, int] = (20, 20, 12)


DEFAULT_HU_WINDOW: tuple[float, float] = (-1000.0, 400.0)


PATCH_KEYS: tuple[str, str, str] = ("patch_s1", "patch_s2", "patch_s3")


def _check_scales(
    scales_mm: Sequence[Sequence[float]], patch_size: Sequence[int]
) -> tuple[np.ndarray, np.ndarray]:
    scales = np.asarray(scales_mm, dtype=np.float64)
    if scales.ndim == 1:
        scales = np.repeat(scales[:, None], 3, axis=1)
    if scales.ndim != 2 or scales.shape[1] != 3 or not np.all(scales > 0):
        raise ValueError(f"scales_mm must be positive (x, y, z) sizes per scale, got {scales_mm}")
    size = np.asarray(patch_size, dtype=np.int64)
    if size.shape != (3,) or not np.all(size > 0):
        raise ValueError(f"patch_size must be three positive ints, got {patch_size}")
    return scales, size


def patch_affines(
    image_affine: np.ndarray | torch.Tensor,
    centers_voxel: np.ndarray,
    scales_mm: Sequence[Sequence[float]] = DEFAULT_SCALES_MM,
    patch_size: Sequence[int] = DEFAULT_PATCH_SIZE,
) -> np.ndarray:
    """The voxel -> RAS affine of every candidate's patch at every scale.

    Patch axes run along the scan's voxel axes (so no rotation is introduced), with voxel size
    ``scale_mm / patch_size``; the patch centre, ``(patch_size - 1) / 2``, maps to the candidate centre.

    Args:
        image_affine: the scan's 4x4 voxel -> RAS affine.
        centers_voxel: (N, 3) fractional voxel indices of the candidates in the scan.
        scales_mm: physical size of each scale.
        patch_size: the common grid size.

    Returns:
        (N, S, 4, 4) float64 affines.
    """
    scales, size = _check_scales(scales_mm, patch_size)
    affine = convert_to_numpy(image_affine, dtype=np.float64)
    centers = np.atleast_2d(np.asarray(centers_voxel, dtype=np.float64))
    spacing = affine_to_spacing(affine, r=3, suppress_zeros=False)
    direction = affine[:3, :3] / spacing
    centers_ras = centers @ affine[:3, :3].T + affine[:3, 3]
    out = np.zeros((len(centers), len(scales), 4, 4))
    out[..., 3, 3] = 1.0
    half = (size - 1) / 2.0
    for s, extent in enumerate(scales):
        linear = direction * (extent / size)  # columns scaled by the patch voxel size
        out[:, s, :3, :3] = linear
        out[:, s, :3, 3] = centers_ras - linear @ half
    return out


def extract_multiscale_patches(
    image: torch.Tensor | np.ndarray,
    image_affine: np.ndarray | torch.Tensor,
    centers_voxel: np.ndarray,
    scales_mm: Sequence[Sequence[float]] = DEFAULT_SCALES_MM,
    patch_size: Sequence[int] = DEFAULT_PATCH_SIZE,
    hu_window: tuple[float, float] | None = DEFAULT_HU_WINDOW,
) -> tuple[np.ndarray, np.ndarray]:
    """Sample every candidate at every scale from one scan, in one resampling call.

    Args:
        image: the scan, (1, X, Y, Z) or (X, Y, Z), in HU (or already in [0, 1] when ``hu_window`` is None).
        image_affine: its voxel -> RAS affine.
        centers_voxel: (N, 3) fractional voxel indices of the candidate centres.
        scales_mm: physical size (x, y, z mm) of each scale, finest first.
        patch_size: the common grid all scales are resampled to.
        hu_window: HU range mapped to [0, 1] with clipping before sampling; outside the scan reads 0,
            which is air (-1000 HU) after the mapping.

    Returns:
        ``(patches, affines)``: float32 (N, S, *patch_size) trilinear samples and their (N, S, 4, 4)
        voxel -> RAS affines.

    Examples:
        >>> ct = torch.full((1, 64, 64, 40), -800.0)  # lung parenchyma, 0.7 x 0.7 x 1.25 mm voxels
        >>> affine = np.diag([0.7, 0.7, 1.25, 1.0])
        >>> patches, affines = extract_multiscale_patches(ct, affine, np.array([[32.0, 32.0, 20.0]]))
        >>> patches.shape, round(float(patches.mean()), 3)  # -800 HU -> (200 / 1400) on the [0, 1] scale
        ((1, 3, 20, 20, 12), 0.143)
    """
    scales, size = _check_scales(scales_mm, patch_size)
    vol = image if isinstance(image, torch.Tensor) else torch.as_tensor(np.asarray(image))
    vol = vol.as_tensor() if isinstance(vol, MetaTensor) else vol
    if vol.ndim == 3:
        vol = vol[None]
    if vol.ndim != 4:
        raise ValueError(f"image must be (1, X, Y, Z) or (X, Y, Z), got shape {tuple(vol.shape)}")
    vol = vol[:1].float()
    if hu_window is not None:
        vol = ScaleIntensityRange(a_min=hu_window[0], a_max=hu_window[1], b_min=0.0, b_max=1.0, clip=True)(
            vol
        )
    affine = convert_to_numpy(image_affine, dtype=np.float64)
    centers = np.atleast_2d(np.asarray(centers_voxel, dtype=np.float64))
    n = len(centers)
    affines = patch_affines(affine, centers, scales, size)
    if n == 0:
        return np.zeros((0, len(scales), *size), np.float32), affines
    spacing = affine_to_spacing(affine, r=3, suppress_zeros=False)
    dims = np.asarray(vol.shape[1:], dtype=np.float64)
    # patch axes are the scan axes, so each patch index maps to the scan index
    # centre + (index - half) * patch_voxel / scan_spacing; Resample wants indices centred on the volume
    steps = np.arange(size.max())[None, :] - ((size - 1) / 2.0)[:, None]  # (3, max size), per axis
    grid = np.empty((4, n, len(scales), *size), dtype=np.float32)
    for s, extent in enumerate(scales):
        ratio = extent / size / spacing
        for axis in range(3):
            offsets = steps[axis, : size[axis]] * ratio[axis]
            shape = [1, 1, 1]
            shape[axis] = int(size[axis])
            coord = (
                centers[:, axis][:, None, None, None] + offsets.reshape(shape)[None] - (dims[axis] - 1) / 2.0
            )
            grid[axis, :, s] = np.broadcast_to(coord, (n, *size))
    grid[3] = 1.0
    # all candidates and scales stacked along the first axis: one grid_sample call for the whole scan
    flat = torch.from_numpy(grid.reshape(4, n * len(scales) * int(size[0]), int(size[1]), int(size[2])))
    sampled = Resample(mode="bilinear", padding_mode="zeros", dtype=torch.float32)(vol, grid=flat)
    patches = convert_to_numpy(sampled).reshape(n, len(scales), *size).astype(np.float32)
    return patches, affines
