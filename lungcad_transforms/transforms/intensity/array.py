"""Intensity transforms: masked normalisation and body-weight SUV."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import torch
from monai.config import DtypeLike, NdarrayOrTensor
from monai.data import MetaTensor
from monai.transforms import Transform
from monai.utils import TransformBackends, convert_to_dst_type
from pydicom.dataset import Dataset

from lungcad_transforms.data.suv import suv_body_weight_factor
from lungcad_transforms.errors import InputError

__all__ = ["SUVBodyWeight", "EmptyMaskWarning", "MaskedNormalizeIntensity"]


class SUVBodyWeight(Transform):
    """Convert a PET image loaded in Bq/ml into body-weight SUV, with the factor from its DICOM header.

    The header is the one named by ``header`` (call or constructor argument) or else the image's
    ``meta["filename_or_obj"]`` (as :func:`lungcad_transforms.io.load_image` sets it; ``meta["seriesuid"]``
    picks the series in a shared folder). The factor is stored in ``meta["suv_factor"]``.

    Args:
        header: a DICOM file, series folder or ``Dataset`` to take the factor from; None: from the meta.

    Raises:
        InputError: the metadata says the image is not PET, the header is not DICOM, or a tag needed for
            SUV is missing or invalid (see :func:`suv_body_weight_factor`).

    Examples:
        >>> pet = load_image("PT_CTAC_dicom")  # doctest: +SKIP
        >>> suv = SUVBodyWeight()(pet)  # doctest: +SKIP
        >>> round(float(suv.max()), 2), round(suv.meta["suv_factor"] * 1e4, 3)  # doctest: +SKIP
        (1.91, 1.774)
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __init__(self, header: Dataset | str | os.PathLike | None = None) -> None:
        self.header = header

    def __call__(
        self, img: NdarrayOrTensor, header: Dataset | str | os.PathLike | None = None
    ) -> NdarrayOrTensor:
        meta = img.meta if isinstance(img, MetaTensor) else {}
        source = header if header is not None else self.header
        seriesuid = None
        if source is None:
            source = meta.get("filename_or_obj")
            seriesuid = meta.get("seriesuid") or None
            if not source:
                raise InputError(
                    "<array>", "no DICOM header to take the SUV factor from (no filename_or_obj)"
                )
            modality = str(meta.get("modality", "") or "").strip().upper()
            if modality and modality != "PT":
                raise InputError(str(source), f"modality is {modality!r}, not PT: SUV applies to PET only")
        if isinstance(source, (str, os.PathLike)) and Path(source).is_dir():
            factor = suv_body_weight_factor(source, seriesuid=seriesuid)
        else:
            factor = suv_body_weight_factor(source)
        out = img * factor
        if isinstance(out, MetaTensor):
            out.meta["suv_factor"] = factor
        return out


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
