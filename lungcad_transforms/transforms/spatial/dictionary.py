"""Dictionary twins of the spatial transforms."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
from monai.config import KeysCollection
from monai.transforms import MapTransform, RandomizableTransform

from lungcad_transforms.transforms.spatial.array import RandPhysicalShift

__all__ = ["RandPhysicalShiftd", "RandPhysicalShiftD", "RandPhysicalShiftDict"]


class RandPhysicalShiftd(RandomizableTransform, MapTransform):
    """Dictionary twin of :class:`RandPhysicalShift`: one offset in mm drawn per call, applied to every key.

    Args:
        keys: the patch keys (e.g. :data:`PATCH_KEYS`).
        max_shift_mm, prob, padding_mode: as :class:`RandPhysicalShift`.
        allow_missing_keys: don't raise when a key is absent.

    Examples:
        >>> import torch
        >>> from monai.data import MetaTensor
        >>> from lungcad_transforms.transforms.spatial.functional import PATCH_KEYS
        >>> t = RandPhysicalShiftd(keys=PATCH_KEYS, max_shift_mm=2.0, prob=1.0)
        >>> sample = {k: MetaTensor(torch.rand(1, 16, 16, 16), affine=torch.diag(torch.tensor([s, s, s, 1.0])))
        ...           for k, s in zip(PATCH_KEYS, (1.25, 1.875, 2.5))}
        >>> sorted(t(sample))
        ['patch_s1', 'patch_s2', 'patch_s3']
    """

    backend = RandPhysicalShift.backend

    def __init__(
        self,
        keys: KeysCollection,
        max_shift_mm: float | Sequence[float] = 2.0,
        prob: float = 0.5,
        padding_mode: str = "border",
        allow_missing_keys: bool = False,
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        RandomizableTransform.__init__(self, prob)
        self.shifter = RandPhysicalShift(max_shift_mm, prob=1.0, padding_mode=padding_mode)

    def set_random_state(self, seed: int | None = None, state: np.random.RandomState | None = None):
        super().set_random_state(seed, state)
        self.shifter.set_random_state(seed, state)
        return self

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        self.randomize(None)
        if not self._do_transform:
            return d
        self.shifter.randomize()
        for key in self.key_iterator(d):
            d[key] = self.shifter.shift(d[key])
        return d


RandPhysicalShiftD = RandPhysicalShiftDict = RandPhysicalShiftd
