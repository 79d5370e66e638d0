"""The lung mask: threshold, components, outside air removed, spacing-aware dilation."""

from __future__ import annotations

import importlib

_NAMES = {
    "NoLungWarning": "lungcad_transforms.transforms.lung.array",
    "LungMask": "lungcad_transforms.transforms.lung.array",
    "LungMaskd": "lungcad_transforms.transforms.lung.dictionary",
    "LungMaskD": "lungcad_transforms.transforms.lung.dictionary",
    "LungMaskDict": "lungcad_transforms.transforms.lung.dictionary",
    "dilate_ellipsoid": "lungcad_transforms.transforms.lung.functional",
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
