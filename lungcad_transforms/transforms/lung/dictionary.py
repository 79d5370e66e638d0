"""LungMaskd: the dictionary twin of LungMask."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

from monai.config import KeysCollection, NdarrayOrTensor
from monai.transforms import MapTransform

from lungcad_transforms.transforms.lung.array import LungMask

__all__ = ["LungMaskd", "LungMaskD", "LungMaskDict"]


class LungMaskd(MapTransform):
    """Dictionary version of :class:`LungMask`.

    Args:
        keys: keys of the CT images to mask.
        new_key_prefix: when given, the mask of ``key`` is stored under ``new_key_prefix + key`` and the CT is
            kept; by default the CT is replaced by its mask.
        allow_missing_keys: do not raise if a key is missing.
        **mask_kwargs: the keyword arguments of :class:`LungMask` (``threshold``, ``dilation_mm``, ...).

    Examples:
        >>> import numpy as np
        >>> chest = np.full((1, 64, 48, 8), -1000, np.int16)
        >>> chest[0, 4:60, 4:44] = 40
        >>> chest[0, 10:28, 10:38] = -850
        >>> chest[0, 36:54, 10:38] = -850
        >>> out = LungMaskd(keys="image", new_key_prefix="lung_", dilation_mm=0)({"image": chest})
        >>> sorted(out), out["lung_image"].shape
        (['image', 'lung_image'], (1, 64, 48, 8))
    """

    backend = LungMask.backend

    def __init__(
        self,
        keys: KeysCollection,
        new_key_prefix: str | None = None,
        allow_missing_keys: bool = False,
        **mask_kwargs: Any,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        # the mask's parameters and their defaults live on LungMask alone, so the twins cannot drift apart
        self.masker = LungMask(**mask_kwargs)
        self.new_key_prefix = new_key_prefix

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            new_key = key if self.new_key_prefix is None else f"{self.new_key_prefix}{key}"
            d[new_key] = self.masker(d[key])
        return d


LungMaskD = LungMaskDict = LungMaskd
