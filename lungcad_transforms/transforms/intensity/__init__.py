"""Intensity transforms: masked normalisation, body-weight SUV."""

from __future__ import annotations

import importlib

_NAMES = {
    "SUVBodyWeight": "lungcad_transforms.transforms.intensity.array",
    "EmptyMaskWarning": "lungcad_transforms.transforms.intensity.array",
    "MaskedNormalizeIntensity": "lungcad_transforms.transforms.intensity.array",
    "SUVBodyWeightd": "lungcad_transforms.transforms.intensity.dictionary",
    "SUVBodyWeightD": "lungcad_transforms.transforms.intensity.dictionary",
    "SUVBodyWeightDict": "lungcad_transforms.transforms.intensity.dictionary",
    "MaskedNormalizeIntensityd": "lungcad_transforms.transforms.intensity.dictionary",
    "MaskedNormalizeIntensityD": "lungcad_transforms.transforms.intensity.dictionary",
    "MaskedNormalizeIntensityDict": "lungcad_transforms.transforms.intensity.dictionary",
}
_SUBPACKAGES = ()
__all__ = sorted(_NAMES)


def __getattr__(name: str):
    # names and subpackages load on first use: importing a package pulls in nothing heavy (itk, monai)
    if name in _NAMES:
        return getattr(importlib.import_module(_NAMES[name]), name)
    if name in _SUBPACKAGES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_NAMES) | set(_SUBPACKAGES))
