"""Spatial transforms: multi-scale physical patches, physically consistent shifts."""

from __future__ import annotations

from lungcad_transforms.utils.lazy import lazy_exports

_SUBPACKAGES = ()
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
__all__ = sorted(_NAMES)
__getattr__, __dir__ = lazy_exports(__name__, _NAMES, _SUBPACKAGES)
