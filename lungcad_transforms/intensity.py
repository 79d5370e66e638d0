"""Intensity normalisation of the Grad-CAM study that MONAI has no transform for.

The study zero-centres and scales each CT by the statistics of the lungs only (the body, bone and the air
around the patient would otherwise dominate the mean and spread). MONAI's ``NormalizeIntensity`` computes
its statistics over the whole image or over the non-zero voxels, never over a given mask, hence
:class:`MaskedNormalizeIntensity`. The study's other intensity steps are MONAI's: the 0..255 display range
is ``ScaleIntensityRange(a_min=-1200, a_max=600, b_min=0, b_max=255, clip=True)`` (lung window), and the
lung masking itself is :class:`lungcad_transforms.lungmask.LungMask`.
"""

from __future__ import annotations

import warnings
from collections.abc import Hashable, Mapping

import numpy as np
import torch
from monai.config import DtypeLike, KeysCollection, NdarrayOrTensor
from monai.transforms import MapTransform, Transform
from monai.utils import TransformBackends, convert_to_dst_type

__all__ = [
    "MaskedNormalizeIntensity",
    "MaskedNormalizeIntensityd",
    "MaskedNormalizeIntensityD",
    "MaskedNormalizeIntensityDict",
    "EmptyMaskWarning",
]


class EmptyMaskWarning(UserWarning):
    """Issued when the normalisation mask is empty and the whole image's statistics are used instead."""


class MaskedNormalizeIntensity(Transform):
    """Zero-centre and scale an image by the mean and standard deviation of the voxels inside a mask.

    ``out = (img - mean(img[mask])) / std(img[mask])``, computed for every voxel, so that the lungs have
    mean 0 and standard deviation 1 whatever the scanner's calibration. With ``outside_value`` set, the
    voxels outside the mask are set to it (0.0 puts them at the lung mean, so that they carry no signal).
    A constant region (std 0) is only centred. An empty mask falls back to the statistics of the whole
    image and issues an :class:`EmptyMaskWarning`.

    Args:
        outside_value: value for the voxels outside the mask; ``None`` leaves them normalised.
        dtype: output dtype.

    Examples:
        >>> import numpy as np
        >>> ct = np.full((1, 8, 8, 4), 40.0, np.float32)  # soft tissue
        >>> ct[0, 2:6, 2:6] = [[-900.0], [-800.0], [-900.0], [-800.0]]  # lung, vessels
        >>> lungs = (ct < -350).astype(np.uint8)
        >>> out = MaskedNormalizeIntensity(outside_value=0.0)(ct, lungs)
        >>> float(out[lungs > 0].mean()), float(out[lungs > 0].std()), float(out[0, 0, 0, 0])
        (0.0, 1.0, 0.0)
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __init__(self, outside_value: float | None = None, dtype: DtypeLike = np.float32) -> None:
        self.outside_value = outside_value
        self.dtype = dtype

    def __call__(self, img: NdarrayOrTensor, mask: NdarrayOrTensor) -> NdarrayOrTensor:
        """Normalise ``img`` by the statistics inside ``mask`` (same shape, or ``img`` without its channel)."""
        if tuple(mask.shape) != tuple(img.shape):
            if tuple(mask.shape) == tuple(img.shape[1:]):
                mask = mask[None]
            else:
                raise ValueError(
                    f"mask shape {tuple(mask.shape)} does not match image shape {tuple(img.shape)}"
                )
        mask_t = convert_to_dst_type(mask, img, dtype=bool)[0]
        values = img.float() if isinstance(img, torch.Tensor) else np.asarray(img, dtype=np.float64)
        inside = values[mask_t]
        if inside.numel() if isinstance(inside, torch.Tensor) else inside.size:
            reference = inside
        else:
            warnings.warn(
                "normalisation mask is empty; using the whole image's statistics",
                EmptyMaskWarning,
                stacklevel=2,
            )
            reference = values
        if isinstance(reference, torch.Tensor):
            mean, std = reference.double().mean().item(), reference.double().std(unbiased=False).item()
        else:
            mean, std = float(reference.mean()), float(reference.std())
        out = (values - mean) / (std if std > 0 else 1.0)
        if self.outside_value is not None:
            out[~mask_t] = self.outside_value
        return convert_to_dst_type(out, img, dtype=self.dtype)[0]


class MaskedNormalizeIntensityd(MapTransform):
    """Dictionary version of :class:`MaskedNormalizeIntensity`: every key is normalised by ``mask_key``.

    Args:
        keys: keys of the images to normalise.
        mask_key: key of the mask (e.g. the output of ``LungMaskd(..., new_key_prefix="lung_")``).
        outside_value: see :class:`MaskedNormalizeIntensity`.
        dtype: output dtype.
        allow_missing_keys: do not raise if a key is missing.

    Examples:
        >>> from lungcad_transforms.lungmask import LungMaskd
        >>> from monai.transforms import Compose
        >>> prep = Compose([
        ...     LungMaskd(keys="image", new_key_prefix="lung_", dilation_mm=10.0),
        ...     MaskedNormalizeIntensityd(keys="image", mask_key="lung_image", outside_value=0.0),
        ... ])
    """

    backend = MaskedNormalizeIntensity.backend

    def __init__(
        self,
        keys: KeysCollection,
        mask_key: str,
        outside_value: float | None = None,
        dtype: DtypeLike = np.float32,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.mask_key = mask_key
        self.normalizer = MaskedNormalizeIntensity(outside_value=outside_value, dtype=dtype)

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.normalizer(d[key], d[self.mask_key])
        return d


MaskedNormalizeIntensityD = MaskedNormalizeIntensityDict = MaskedNormalizeIntensityd
