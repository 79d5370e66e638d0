"""Dictionary twins of the intensity transforms."""

from __future__ import annotations

from collections.abc import Hashable, Mapping

import numpy as np
from monai.config import DtypeLike, KeysCollection, NdarrayOrTensor
from monai.transforms import MapTransform

from lungcad_transforms.transforms.intensity.array import MaskedNormalizeIntensity, SUVBodyWeight

__all__ = [
    "SUVBodyWeightd",
    "SUVBodyWeightD",
    "SUVBodyWeightDict",
    "MaskedNormalizeIntensityd",
    "MaskedNormalizeIntensityD",
    "MaskedNormalizeIntensityDict",
]


class SUVBodyWeightd(MapTransform):
    """Dictionary-based :class:`SUVBodyWeight`: each key's PET image is scaled by its own header's factor.

    Examples:
        >>> data = SUVBodyWeightd(keys="pet")({"pet": load_image("PT_CTAC_dicom")})  # doctest: +SKIP
        >>> data["pet"].meta["suv_factor"] > 0  # doctest: +SKIP
        True
    """

    backend = SUVBodyWeight.backend

    def __init__(self, keys: KeysCollection, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.converter = SUVBodyWeight()

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.converter(d[key])
        return d


SUVBodyWeightD = SUVBodyWeightDict = SUVBodyWeightd


class MaskedNormalizeIntensityd(MapTransform):
    """Dictionary version of :class:`MaskedNormalizeIntensity`: every key is normalised by ``mask_key``.

    Args:
        keys: keys of the images to normalise.
        mask_key: key of the mask (e.g. the output of ``LungMaskd(..., new_key_prefix="lung_")``).
        outside_value: see :class:`MaskedNormalizeIntensity`.
        dtype: output dtype.
        allow_missing_keys: do not raise if a key is missing.

    Examples:
        >>> from lungcad_transforms.transforms.lung.dictionary import LungMaskd
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
