"""Dictionary twins of the PET/CT transforms."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

from monai.transforms import MapTransform

from lungcad_transforms.transforms.petct.array import LoadPETCT, PETCTChannels

__all__ = [
    "LoadPETCTd",
    "LoadPETCTD",
    "LoadPETCTDict",
    "PETCTChannelsd",
    "PETCTChannelsD",
    "PETCTChannelsDict",
]


class LoadPETCTd(MapTransform):
    """Dictionary-based :class:`LoadPETCT`: ``d[ct_key]`` and ``d[pet_key]`` (paths) become CT (HU) and
    PET (SUV) MetaTensors on the CT grid.

    Examples:
        >>> d = LoadPETCTd()({"ct": "study/CT", "pet": "study/PT"})  # doctest: +SKIP
        >>> d["ct"].shape == d["pet"].shape  # doctest: +SKIP
        True
    """

    backend = LoadPETCT.backend

    def __init__(
        self,
        ct_key: str = "ct",
        pet_key: str = "pet",
        pet_units: str = "bqml",
        allow_frame_mismatch: bool = False,
    ) -> None:
        super().__init__([ct_key, pet_key])
        self.ct_key, self.pet_key = ct_key, pet_key
        self.loader = LoadPETCT(pet_units, allow_frame_mismatch)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        d[self.ct_key], d[self.pet_key] = self.loader(d[self.ct_key], d[self.pet_key])
        return d


class PETCTChannelsd(MapTransform):
    """Dictionary-based :class:`PETCTChannels`: ``d[output_key]`` = the channels of ``d[ct_key]``, ``d[pet_key]``.

    Examples:
        >>> import torch
        >>> d = PETCTChannelsd(mode="ct_pet")({"ct": torch.zeros(1, 4, 4, 2), "pet": torch.zeros(1, 4, 4, 2)})
        >>> d["image"].shape
        torch.Size([2, 4, 4, 2])
    """

    backend = PETCTChannels.backend

    def __init__(
        self, ct_key: str = "ct", pet_key: str = "pet", output_key: str = "image",
        window: str | Sequence[float] = "lung", suv_max: float = 10.0, mode: str = "ct_pet_fused",
    ) -> None:  # fmt: skip
        super().__init__([ct_key, pet_key])
        self.ct_key, self.pet_key, self.output_key = ct_key, pet_key, output_key
        self.stack = PETCTChannels(window, suv_max, mode)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        d[self.output_key] = self.stack(d[self.ct_key], d[self.pet_key])
        return d


LoadPETCTD = LoadPETCTDict = LoadPETCTd
PETCTChannelsD = PETCTChannelsDict = PETCTChannelsd
