"""Spatial transforms: multi-scale physical patches, physically consistent shifts."""

from __future__ import annotations

import importlib

_NAMES = {
    "MultiScalePatch": "lungcad_transforms.transforms.spatial.array",
    "RandPhysicalShift": "lungcad_transforms.transforms.spatial.array",
    "RandPhysicalShiftd": "lungcad_transforms.transforms.spatial.dictionary",
    "RandPhysicalShiftD": "lungcad_transforms.transforms.spatial.dictionary",
    "RandPhysicalShiftDict": "lungcad_transforms.transforms.spatial.dictionary",
    "DEFAULT_SCALES_MM": "lungcad_transforms.transforms.spatial.functional",
    "DEFAULT_PATCH_SIZE": "lungcad_transforms.transforms.spatial.functional",
    "DEFAULT_HU_WINDOW": "lungcad_transforms.transforms.spatial.functional",
    "PATCH_KEYS": "lungcad_transforms.transforms.spatial.functional",
    "patch_affines": "lungcad_transforms.transforms.spatial.functional",
    "extract_multiscale_patches": "lungcad_transforms.transforms.spatial.functional",
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
