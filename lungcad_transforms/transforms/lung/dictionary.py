"""LungMaskd: the dictionary twin of LungMask."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import numpy as np
from monai.config import DtypeLike, KeysCollection, NdarrayOrTensor
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
        other arguments: see :class:`LungMask`.

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
        threshold: float = -350.0,
        outside_threshold: float = -1500.0,
        outside_air_max_hu: float | None = -950.0,
        keep_fraction: float = 0.2,
        min_area_fraction: float = 0.05,
        fill_holes: bool = True,
        max_hole_mm2: float | None = 1000.0,
        dilation_mm: float = 10.0,
        spacing: Sequence[float] | None = None,
        dtype: DtypeLike = np.uint8,
        fill_enclosed: bool = True,
        enclosed_max_mm: float = 100.0,
        enclosed_min_axes: int = 10,
        enclosed_max_hu: float = 200.0,
        new_key_prefix: str | None = None,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.masker = LungMask(
            threshold=threshold,
            outside_threshold=outside_threshold,
            outside_air_max_hu=outside_air_max_hu,
            keep_fraction=keep_fraction,
            min_area_fraction=min_area_fraction,
            fill_holes=fill_holes,
            max_hole_mm2=max_hole_mm2,
            dilation_mm=dilation_mm,
            spacing=spacing,
            dtype=dtype,
            fill_enclosed=fill_enclosed,
            enclosed_max_mm=enclosed_max_mm,
            enclosed_min_axes=enclosed_min_axes,
            enclosed_max_hu=enclosed_max_hu,
        )
        self.new_key_prefix = new_key_prefix

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            new_key = key if self.new_key_prefix is None else f"{self.new_key_prefix}{key}"
            d[new_key] = self.masker(d[key])
        return d


LungMaskD = LungMaskDict = LungMaskd
