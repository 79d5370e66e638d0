"""Intensity transforms: masked normalisation, body-weight SUV."""

from __future__ import annotations

from lungcad_transforms.utils.lazy import lazy_exports

_SUBPACKAGES = ()
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
__all__ = sorted(_NAMES)
__getattr__, __dir__ = lazy_exports(__name__, _NAMES, _SUBPACKAGES)
