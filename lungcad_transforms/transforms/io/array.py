"""Loading and checking scans as MONAI array transforms."""

from __future__ import annotations

from typing import Any

import torch
from monai.config import NdarrayOrTensor
from monai.data import MetaTensor
from monai.transforms import Transform
from monai.utils import TransformBackends

from lungcad_transforms.data.image_reader import load_image
from lungcad_transforms.errors import InputError

__all__ = ["ValidateCT", "LoadScan"]


class ValidateCT(Transform):
    """Refuse an image that cannot be a CT volume in Hounsfield units; pass a good one through unchanged.

    Checks, in order: a single-channel 3-D volume ``(1, X, Y, Z)``; a ``modality`` in the metadata, when
    present and not empty, equal to ``"CT"``; finite values; and HU-like values (somewhere below
    ``max_air_hu``: every chest CT has air in the lungs or around the body, an MR or a PET in SUV has none).

    Args:
        max_air_hu: the darkest voxel must be below this for the values to be HU. Default -500.

    Raises:
        InputError: naming ``meta["filename_or_obj"]`` and what is wrong.

    Examples:
        >>> ct = MetaTensor(torch.full((1, 8, 8, 4), -1000.0), meta={"modality": "CT"})
        >>> ValidateCT()(ct).shape
        torch.Size([1, 8, 8, 4])
        >>> ValidateCT()(MetaTensor(torch.ones(1, 8, 8, 4), meta={"modality": "MR", "filename_or_obj": "t1.nii"}))
        Traceback (most recent call last):
        ...
        lungcad_transforms.errors.InputError: t1.nii: modality is 'MR', not CT
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __init__(self, max_air_hu: float = -500.0) -> None:
        self.max_air_hu = max_air_hu

    def __call__(self, img: NdarrayOrTensor) -> NdarrayOrTensor:
        meta = img.meta if isinstance(img, MetaTensor) else {}
        where = str(meta.get("filename_or_obj", "") or "<array>")
        shape = tuple(img.shape)
        if len(shape) != 4 or shape[0] != 1:
            raise InputError(where, f"expected a single-channel 3-D volume (1, X, Y, Z), got shape {shape}")
        modality = str(meta.get("modality", "") or "").strip()
        if modality and modality.upper() != "CT":
            raise InputError(where, f"modality is {modality!r}, not CT")
        values = torch.as_tensor(img.as_tensor() if isinstance(img, MetaTensor) else img)
        finite = torch.isfinite(values)
        if not bool(finite.all()):
            raise InputError(where, f"contains {int((~finite).sum())} NaN or infinite values")
        darkest = float(values.min())
        if darkest >= self.max_air_hu:
            raise InputError(
                where,
                f"values are not CT Hounsfield units: nothing below {self.max_air_hu:g} (no air), minimum {darkest:g}",
            )
        return img


class LoadScan(Transform):
    """Load one scan with :func:`lungcad_transforms.io.load_image`: ``MetaTensor`` (1, X, Y, Z), RAS, float32.

    Accepts what ``load_image`` accepts: a DICOM series folder, a list of one series' files, a NIfTI /
    MetaImage / NRRD file, or a :func:`~lungcad_transforms.io.find_images` entry. The metadata carries
    ``seriesuid`` and ``modality``.

    Examples:
        >>> ct = LoadScan()("LIDC-IDRI-0003/1.3.6.1.4.1.14519.5.2.1.6279.6001.1013.../1.3.6...003264")  # doctest: +SKIP
        >>> ct.shape, ct.meta["modality"]  # doctest: +SKIP
        (torch.Size([1, 512, 512, 11]), 'CT')
    """

    backend = [TransformBackends.TORCH]

    def __call__(self, ref: Any) -> MetaTensor:

        return load_image(ref)
