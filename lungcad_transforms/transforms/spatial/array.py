"""Spatial array transforms: multi-scale patches and physically consistent shifts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from monai.data import MetaTensor
from monai.data.utils import affine_to_spacing
from monai.transforms import RandomizableTransform, Resample, Transform
from monai.transforms.utils import create_grid
from monai.utils import TransformBackends, convert_to_numpy

from lungcad_transforms.errors import InputError
from lungcad_transforms.transforms.spatial.functional import (
    DEFAULT_HU_WINDOW,
    DEFAULT_PATCH_SIZE,
    DEFAULT_SCALES_MM,
    _check_scales,
    extract_multiscale_patches,
)

__all__ = ["MultiScalePatch", "RandPhysicalShift"]


class MultiScalePatch(Transform):
    """Cut the multi-scale patches of candidates out of a loaded CT scan.

    Args:
        scales_mm: physical size (x, y, z mm) of each scale, finest first.
        patch_size: the common grid all scales are resampled to.
        hu_window: HU range mapped to [0, 1] before sampling (None: the image is already scaled).

    ``__call__(img, centers_lps)`` takes the scan as a MetaTensor (1, X, Y, Z) in RAS (as
    ``io.load_image`` gives it) and candidate centres in LUNA16 world coordinates (LPS mm, (3,) or
    (N, 3)); it returns one MetaTensor (S, *patch_size) per centre, channel ``s`` = scale ``s``, whose
    affine is the finest scale's and whose ``meta["scale_affines"]`` holds all scales' affines.

    Raises:
        InputError: a centre lies outside the scan (named by its index and position).

    Examples:
        >>> from lungcad_transforms.io import load_image  # doctest: +SKIP
        >>> ct = load_image("LIDC-IDRI-0003/series")  # doctest: +SKIP
        >>> (patch,) = MultiScalePatch()(ct, [72.29, 76.90, -190.46])  # doctest: +SKIP
        >>> patch.shape  # doctest: +SKIP
        torch.Size([3, 20, 20, 12])
    """

    backend = [TransformBackends.TORCH]

    def __init__(
        self,
        scales_mm: Sequence[Sequence[float]] = DEFAULT_SCALES_MM,
        patch_size: Sequence[int] = DEFAULT_PATCH_SIZE,
        hu_window: tuple[float, float] | None = DEFAULT_HU_WINDOW,
    ) -> None:
        _check_scales(scales_mm, patch_size)
        self.scales_mm = scales_mm
        self.patch_size = tuple(int(s) for s in patch_size)
        self.hu_window = hu_window

    def __call__(self, img: torch.Tensor, centers_lps: Sequence[float] | np.ndarray) -> list[MetaTensor]:
        from lungcad_transforms.data.coords import inside_volume, world_to_voxel

        if not isinstance(img, MetaTensor):
            raise TypeError("MultiScalePatch needs a MetaTensor (its affine places the candidates)")
        source = str(img.meta.get("filename_or_obj", "<image>"))
        voxels = world_to_voxel(centers_lps, img.affine)
        inside = inside_volume(voxels, img.shape[1:])
        if not inside.all():
            first = int(np.flatnonzero(~inside)[0])
            raise InputError(
                source, f"candidate {first} at LPS {np.atleast_2d(centers_lps)[first]} lies outside the scan"
            )
        patches, affines = extract_multiscale_patches(
            img, img.affine, voxels, self.scales_mm, self.patch_size, self.hu_window
        )
        out = []
        for patch, affine in zip(patches, affines, strict=True):
            meta = {"scale_affines": affine, "filename_or_obj": source, "space": "RAS"}
            out.append(MetaTensor(torch.from_numpy(patch), affine=torch.as_tensor(affine[0]), meta=meta))
        return out


class RandPhysicalShift(RandomizableTransform):
    """Shift a patch by a random offset given in millimetres (converted with the patch's own voxel size).

    The three scales of a candidate have different voxel sizes, so a shift in voxels would move them
    by different distances; a shift in mm keeps them centred on the same (jittered) point. MONAI's
    ``RandAffine`` draws translations in voxels, hence this transform. It resamples with MONAI's
    ``Resample`` on a shifted identity grid (cached per patch shape: a shift is all it does, and this
    is three times quicker than building an ``Affine`` per call), and updates the affine to match.

    Args:
        max_shift_mm: the offset along each axis is drawn uniformly from [-max, max] mm.
        prob: probability of shifting.
        padding_mode: how the patch is extended at its border (``"border"``: repeat the edge).

    Examples:
        >>> patch = MetaTensor(torch.rand(1, 16, 16, 16), affine=torch.diag(torch.tensor([1.25, 1.25, 1.25, 1.0])))
        >>> shift = RandPhysicalShift(max_shift_mm=2.0, prob=1.0)
        >>> shift.set_random_state(0)(patch).shape  # up to 2 mm = 1.6 voxels at 1.25 mm
        torch.Size([1, 16, 16, 16])
    """

    backend = Resample.backend

    def __init__(
        self, max_shift_mm: float | Sequence[float] = 2.0, prob: float = 0.5, padding_mode: str = "border"
    ) -> None:
        RandomizableTransform.__init__(self, prob)
        self.max_shift_mm = np.broadcast_to(np.asarray(max_shift_mm, dtype=np.float64), (3,)).copy()
        self.resampler = Resample(mode="bilinear", padding_mode=padding_mode, dtype=torch.float32)
        self.shift_mm = np.zeros(3)
        self._grids: dict[tuple[int, ...], torch.Tensor] = {}

    def randomize(self, data: Any = None) -> None:
        super().randomize(None)
        if self._do_transform:
            self.shift_mm = self.R.uniform(-self.max_shift_mm, self.max_shift_mm)

    def shift(self, img: torch.Tensor) -> torch.Tensor:
        """Apply the current ``shift_mm`` to ``img`` (no new random draw)."""
        affine = convert_to_numpy(img.affine, dtype=np.float64) if isinstance(img, MetaTensor) else np.eye(4)
        voxels = self.shift_mm / affine_to_spacing(affine, r=3, suppress_zeros=False)
        shape = tuple(int(s) for s in img.shape[1:])
        if shape not in self._grids:
            self._grids[shape] = torch.as_tensor(create_grid(shape), dtype=torch.float32)
        grid = self._grids[shape].clone()
        grid[:3] += torch.as_tensor(voxels, dtype=torch.float32).view(3, 1, 1, 1)
        out = self.resampler(img, grid)
        if isinstance(out, MetaTensor):
            # output voxel i shows input voxel i + shift: the world position moves with it
            moved = np.eye(4)
            moved[:3, 3] = voxels
            out.affine = torch.as_tensor(affine @ moved)
        return out

    def __call__(self, img: torch.Tensor, randomize: bool = True) -> torch.Tensor:
        if randomize:
            self.randomize()
        if not self._do_transform:
            return img
        return self.shift(img)
