"""Dictionary twins of the registration transforms."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

from monai.transforms import MapTransform

from lungcad_transforms.transforms.registration.array import AlignPETToMR, PETToSUV

__all__ = [
    "PETToSUVd",
    "PETToSUVD",
    "PETToSUVDict",
    "AlignPETToMRd",
    "AlignPETToMRD",
    "AlignPETToMRDict",
]


class PETToSUVd(MapTransform):
    """Dictionary-based :class:`PETToSUV`.

    Examples:
        >>> d = PETToSUVd("pet")({"pet": load_image("study/PT")})  # doctest: +SKIP
        >>> d["pet"].meta["pet_units"]  # doctest: +SKIP
        'suv'
    """

    backend = PETToSUV.backend

    def __init__(self, keys: Any = "pet", units: str = "auto", allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.convert = PETToSUV(units)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.convert(d[key])
        return d


class AlignPETToMRd(MapTransform):
    """Dictionary-based :class:`AlignPETToMR`: ``d[pet_key]`` is replaced by the PET on ``d[mr_key]``'s grid;
    with ``mr_mask_key`` / ``pet_mask_key`` present, their overlap is reported and the PET mask is put on
    the MR grid too.

    Args:
        mr_key, pet_key: the keys of the MR and of the PET (replaced by the aligned PET).
        mr_mask_key, pet_mask_key: optional mask keys; the PET mask is resampled onto the MR grid too.
        **align_kwargs: the keyword arguments of :class:`AlignPETToMR` (``registration``, ``transform``,
            ``min_overlap``, ``iterations``, ``check_patient``).

    Examples:
        >>> d = AlignPETToMRd()({"mr": mr, "pet": pet})  # doctest: +SKIP
        >>> d["pet"].meta["registration"]["method"]  # doctest: +SKIP
        'rigid'
    """

    backend = AlignPETToMR.backend

    def __init__(
        self,
        mr_key: str = "mr",
        pet_key: str = "pet",
        mr_mask_key: str | None = None,
        pet_mask_key: str | None = None,
        **align_kwargs: Any,
    ) -> None:
        super().__init__([mr_key, pet_key])
        self.mr_key, self.pet_key, self.mr_mask_key, self.pet_mask_key = (
            mr_key,
            pet_key,
            mr_mask_key,
            pet_mask_key,
        )
        # the alignment's parameters and their defaults live on AlignPETToMR alone (no drifting copy)
        self.align = AlignPETToMR(**align_kwargs)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        from lungcad_transforms.transforms.registration.functional import resample_through

        d = dict(data)
        mr_mask = d.get(self.mr_mask_key) if self.mr_mask_key else None
        pet_mask = d.get(self.pet_mask_key) if self.pet_mask_key else None
        d[self.pet_key] = self.align(d[self.mr_key], d[self.pet_key], mr_mask, pet_mask)
        if pet_mask is not None:
            matrix = d[self.pet_key].meta["registration"]["matrix_lps"]
            d[self.pet_mask_key] = resample_through(pet_mask, d[self.mr_key], matrix, mode="nearest")
        return d


PETToSUVD = PETToSUVDict = PETToSUVd
AlignPETToMRD = AlignPETToMRDict = AlignPETToMRd
