"""Loading and checking scans as MONAI array transforms."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from monai.config import NdarrayOrTensor
from monai.data import MetaTensor
from monai.transforms import Transform
from monai.utils import TransformBackends

from lungcad_transforms.data.image_reader import load_image
from lungcad_transforms.errors import InputError
from lungcad_transforms.transforms.io.functional import check_ct, source_name

__all__ = ["ValidateCT", "LoadScan"]


class ValidateCT(Transform):
    """Refuse an image that cannot be a CT volume in Hounsfield units; pass a good one through unchanged.

    Checks a single-channel 3-D volume ``(1, X, Y, Z)``, then :func:`check_ct`: a declared modality other
    than CT is refused; with none, or an unknown one (a LUNA16 ``.mhd`` says ``MET_MOD_UNKNOWN``), the
    values decide: finite, and HU-like (somewhere below ``max_air_hu``: every chest CT has air in the lungs
    or around the body, an MR or a PET in SUV has none).

    Args:
        max_air_hu: the darkest voxel must be below this for the values to be HU. Default -500.

    Raises:
        InputError: naming ``meta["filename_or_obj"]`` and what is wrong.

    Examples:
        >>> import torch
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
        where = source_name(img)
        shape = tuple(img.shape)
        if len(shape) != 4 or shape[0] != 1:
            raise InputError(where, f"expected a single-channel 3-D volume (1, X, Y, Z), got shape {shape}")
        check_ct(img, where, max_air_hu=self.max_air_hu)
        return img


class LoadScan(Transform):
    """Load one scan with :func:`lungcad_transforms.data.image_reader.load_image`: ``MetaTensor`` (1, X, Y, Z), RAS.

    Accepts what ``load_image`` accepts: a DICOM series folder, a list of one series' files, a NIfTI /
    MetaImage / NRRD file, a :func:`~lungcad_transforms.data.image_reader.find_images` entry, or an image
    already in memory (a ``MetaTensor``, or an array with its metadata as ``meta``). The metadata
    carries what ``load_image`` documents: ``seriesuid``, ``modality``, the file's own grid (``source_affine``,
    ``source_axcodes``, ``source_shape``, for writing results back on it) and the DICOM UIDs.

    Examples:
        >>> ct = LoadScan()("LIDC-IDRI-0003/1.3.6.1.4.1.14519.5.2.1.6279.6001.1013.../1.3.6...003264")  # doctest: +SKIP
        >>> ct.shape, ct.meta["modality"]  # doctest: +SKIP
        (torch.Size([1, 512, 512, 11]), 'CT')
    """

    backend = [TransformBackends.TORCH]

    def __call__(self, ref: Any, meta: Mapping[str, Any] | None = None) -> MetaTensor:
        return load_image(ref, meta)
