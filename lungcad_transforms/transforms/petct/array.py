"""PET/CT transforms: load a PET/CT pair onto the CT grid in SUV, and stack it into network channels."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import torch
from monai.data import MetaTensor
from monai.transforms import ResampleToMatch, Transform
from monai.utils import TransformBackends

from lungcad_transforms.transforms.petct.functional import check_same_frame, petct_channels

logger = logging.getLogger(__name__)

__all__ = ["LoadPETCT", "PETCTChannels"]


class LoadPETCT(Transform):
    """Load a CT and a PET of one study and return ``(ct_hu, pet_suv)`` on the CT's voxel grid.

    Both load as RAS MetaTensors (:func:`lungcad_transforms.data.load_image`); a PET in Bq/ml gets
    body-weight SUV from its DICOM tags (:class:`~lungcad_transforms.transforms.SUVBodyWeight`); the
    PET is resampled onto the CT grid by world geometry (``monai.transforms.ResampleToMatch``, trilinear,
    zero outside the PET field of view). PET and CT in different Frames of Reference are refused.

    Args:
        pet_units: ``"bqml"`` (DICOM PET: SUV computed from the header) or ``"suv"`` (already SUV).
        allow_frame_mismatch: resample even when the FrameOfReferenceUIDs differ.

    Raises:
        InputError: unreadable image, missing SUV tags, or different Frames of Reference.

    Examples:
        >>> ct, pet = LoadPETCT()("R01-005/CT_dicom", "R01-005/PT_CTAC_dicom")  # doctest: +SKIP
        >>> ct.shape == pet.shape, pet.meta["suv_factor"] > 0  # doctest: +SKIP
        (True, True)
    """

    backend = [TransformBackends.TORCH]

    def __init__(self, pet_units: str = "bqml", allow_frame_mismatch: bool = False) -> None:
        if pet_units not in ("bqml", "suv"):
            raise ValueError(f"pet_units must be 'bqml' or 'suv', got {pet_units!r}")
        self.pet_units = pet_units
        self.allow_frame_mismatch = allow_frame_mismatch
        self.resample = ResampleToMatch(mode="bilinear", padding_mode="zeros")

    def __call__(self, ct: Any, pet: Any) -> tuple[MetaTensor, MetaTensor]:
        from lungcad_transforms.data.image_reader import load_image
        from lungcad_transforms.transforms.intensity.array import SUVBodyWeight

        ct_img = ct if isinstance(ct, MetaTensor) else load_image(ct)
        pet_img = pet if isinstance(pet, MetaTensor) else load_image(pet)
        check_same_frame(ct_img.meta, pet_img.meta, self.allow_frame_mismatch)
        if self.pet_units == "bqml":
            pet_img = SUVBodyWeight()(pet_img)
        factor = pet_img.meta.get("suv_factor")
        pet_on_ct = self.resample(pet_img.float(), img_dst=ct_img)
        pet_on_ct.meta["suv_factor"] = factor
        return ct_img, pet_on_ct


class PETCTChannels(Transform):
    """CT (HU) and PET (SUV) on one grid -> the network's channels (see :func:`petct_channels`).

    Args:
        window: CT window: ``"lung"``, ``"mediastinal"`` or ``[low, high]`` HU.
        suv_max: SUV shown as 1.
        mode: ``"ct_pet"`` (2 channels) or ``"ct_pet_fused"`` (3: CT, PET, their mean).

    Examples:
        >>> PETCTChannels(mode="ct_pet")(torch.zeros(1, 4, 4, 2), torch.zeros(1, 4, 4, 2)).shape
        torch.Size([2, 4, 4, 2])
    """

    backend = [TransformBackends.TORCH]

    def __init__(
        self, window: str | Sequence[float] = "lung", suv_max: float = 10.0, mode: str = "ct_pet_fused"
    ) -> None:
        self.window, self.suv_max, self.mode = window, float(suv_max), mode

    def __call__(self, ct: torch.Tensor, pet: torch.Tensor) -> torch.Tensor:
        out = petct_channels(torch.as_tensor(ct), torch.as_tensor(pet), self.window, self.suv_max, self.mode)
        if isinstance(ct, MetaTensor):
            out = MetaTensor(out, affine=ct.affine, meta=dict(ct.meta))
        return out
