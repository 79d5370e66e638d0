"""LUNA16 world coordinates (ITK physical space, LPS, mm) <-> voxel indices of RAS images.

The only place in lungcad that flips signs between LPS and RAS.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from monai.utils import convert_to_numpy
from numpy.typing import ArrayLike

__all__ = [
    "LPS_TO_RAS",
    "affine_lps",
    "lps_to_ras_affine",
    "ras_to_lps_affine",
    "world_to_voxel",
    "voxel_to_world",
    "inside_volume",
]


# LPS and RAS differ by the sign of the first two axes; the same diagonal maps either way.
LPS_TO_RAS = np.array([-1.0, -1.0, 1.0])


def _as_points(points: ArrayLike | torch.Tensor, name: str) -> np.ndarray:
    arr = convert_to_numpy(points, dtype=np.float64, wrap_sequence=True)
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise ValueError(f"{name} must have shape (3,) or (N, 3), got {np.shape(points)}")
    return arr


def _as_affine(affine: ArrayLike | torch.Tensor) -> np.ndarray:
    arr = convert_to_numpy(affine, dtype=np.float64, wrap_sequence=True)
    if arr.shape != (4, 4):
        raise ValueError(f"affine must be a 4x4 matrix (3-D image), got shape {arr.shape}")
    return arr


def world_to_voxel(points_lps: ArrayLike | torch.Tensor, affine_ras: ArrayLike | torch.Tensor) -> np.ndarray:
    """Convert LUNA16 world positions (ITK physical space, LPS, mm) to voxel indices.

    Args:
        points_lps: one point ``(3,)`` or ``(N, 3)`` points, ``(coordX, coordY, coordZ)`` as in LUNA16.
        affine_ras: the 4x4 voxel -> RAS affine of the loaded image (``MetaTensor.affine``).

    Returns:
        float64 array ``(N, 3)`` of fractional voxel indices along the image's spatial axes (a single
        point gives ``(1, 3)``). Not rounded and not clipped: check with :func:`inside_volume`, and round
        with ``np.floor(index + 0.5)`` (the voxel whose extent holds the point).

    Examples:
        A 0.82 mm x 0.82 mm x 2.5 mm CT slab whose voxel (0, 0, 0) sits at RAS (-190.4, -209.2, -204):

        >>> affine = np.array([[0.82, 0, 0, -190.4], [0, 0.82, 0, -209.2], [0, 0, 2.5, -204.0], [0, 0, 0, 1]])
        >>> world_to_voxel([72.29, 76.90, -190.46], affine).round(1)  # a LUNA16 nodule row
        array([[144. , 161.3,   5.4]])
    """
    points = _as_points(points_lps, "points_lps")
    affine = _as_affine(affine_ras)
    points_ras = points * LPS_TO_RAS
    homogeneous = np.concatenate([points_ras, np.ones((len(points_ras), 1))], axis=1)
    # solve instead of inv(): better conditioned for strongly anisotropic spacing
    return np.linalg.solve(affine, homogeneous.T).T[:, :3]


def voxel_to_world(indices: ArrayLike | torch.Tensor, affine_ras: ArrayLike | torch.Tensor) -> np.ndarray:
    """Convert voxel indices of a loaded (RAS-affine) image to LUNA16 world positions (LPS, mm).

    Args:
        indices: one index ``(3,)`` or ``(N, 3)`` indices (integer or fractional) along the spatial axes.
        affine_ras: the 4x4 voxel -> RAS affine of the loaded image (``MetaTensor.affine``).

    Returns:
        float64 array ``(N, 3)`` of ``(coordX, coordY, coordZ)`` in ITK physical space (LPS, mm), ready for
        a LUNA16-style CSV.

    Examples:
        >>> affine = np.array([[0.82, 0, 0, -190.4], [0, 0.82, 0, -209.2], [0, 0, 2.5, -204.0], [0, 0, 0, 1]])
        >>> voxel_to_world([144, 161, 5], affine).round(2)
        array([[  72.32,   77.18, -191.5 ]])
    """
    voxels = _as_points(indices, "indices")
    affine = _as_affine(affine_ras)
    points_ras = voxels @ affine[:3, :3].T + affine[:3, 3]
    return points_ras * LPS_TO_RAS


def inside_volume(indices: ArrayLike | torch.Tensor, spatial_shape: Sequence[int]) -> np.ndarray:
    """Whether each (fractional) voxel index lies inside a volume of the given spatial shape.

    A voxel ``i`` covers ``[i - 0.5, i + 0.5)``, so the volume spans ``[-0.5, n - 0.5)`` along an axis of
    ``n`` voxels. Non-finite indices are outside.

    Args:
        indices: ``(3,)`` or ``(N, 3)`` voxel indices, e.g. from :func:`world_to_voxel`.
        spatial_shape: the image's spatial shape ``(X, Y, Z)`` (``MetaTensor.shape[1:]``).

    Returns:
        bool array ``(N,)``.

    Examples:
        An 11-slice CT slab: a nodule centre at slice 5.4 is inside, one at slice 12.7 is not.

        >>> inside_volume([[144.0, 161.3, 5.4], [84.5, 313.7, 12.7]], (512, 512, 11))
        array([ True, False])
    """
    voxels = _as_points(indices, "indices")
    shape = np.asarray(tuple(spatial_shape), dtype=np.float64)
    if shape.shape != (3,):
        raise ValueError(f"spatial_shape must have 3 entries (X, Y, Z), got {tuple(spatial_shape)}")
    with np.errstate(invalid="ignore"):
        inside = (voxels >= -0.5) & (voxels < shape - 0.5)
    return inside.all(axis=1)


def affine_lps(spacing: Sequence[float], origin_lps: Sequence[float]) -> np.ndarray:
    """The 4x4 LPS affine of an axis-aligned grid (ITK's direction identity): voxel index -> LPS mm.

    Examples:
        >>> affine_lps((0.7, 0.7, 1.25), (-180.0, -200.0, -300.0))[:3, 3]
        array([-180., -200., -300.])
    """
    affine = np.eye(4)
    affine[:3, :3] = np.diag(np.asarray(spacing, dtype=float))
    affine[:3, 3] = np.asarray(origin_lps, dtype=float)
    return affine


def lps_to_ras_affine(affine_lps: ArrayLike | torch.Tensor) -> np.ndarray:
    """Turn a voxel -> LPS mm affine (ITK, DICOM, MetaImage) into voxel -> RAS mm (NIfTI, MONAI).

    Only the world axes change sign (x and y); the voxel axes, their order and the spacing stay, so the
    array needs no reordering. The flip is its own inverse: :func:`ras_to_lps_affine` is the same matrix.

    Examples:
        >>> lps_to_ras_affine(affine_lps((0.7, 0.7, 1.25), (-180.0, -200.0, -300.0)))
        array([[  -0.7 ,    0.  ,    0.  ,  180.  ],
               [   0.  ,   -0.7 ,    0.  ,  200.  ],
               [   0.  ,    0.  ,    1.25, -300.  ],
               [   0.  ,    0.  ,    0.  ,    1.  ]])
    """
    return np.diag([*LPS_TO_RAS, 1.0]) @ _as_affine(affine_lps)


def ras_to_lps_affine(affine_ras: ArrayLike | torch.Tensor) -> np.ndarray:
    """Turn a voxel -> RAS mm affine (``MetaTensor.affine``, NIfTI) into voxel -> LPS mm (ITK physical space).

    Examples:
        >>> ras_to_lps_affine(np.diag([0.8, 0.8, 2.5, 1.0]))[:3, :3].diagonal()
        array([-0.8, -0.8,  2.5])
    """
    return np.diag([*LPS_TO_RAS, 1.0]) @ _as_affine(affine_ras)
