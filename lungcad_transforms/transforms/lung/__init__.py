"""The lung mask: threshold, components, outside air removed, dense masses the lung encloses, dilation."""

from __future__ import annotations

from lungcad_transforms.utils.lazy import lazy_exports

_SUBPACKAGES = ()
_NAMES = {
    "NoLungWarning": "lungcad_transforms.transforms.lung.array",
    "LungMask": "lungcad_transforms.transforms.lung.array",
    "LungMaskd": "lungcad_transforms.transforms.lung.dictionary",
    "LungMaskD": "lungcad_transforms.transforms.lung.dictionary",
    "LungMaskDict": "lungcad_transforms.transforms.lung.dictionary",
    "add_enclosed": "lungcad_transforms.transforms.lung.enclosure",
    "enclosed_by_lung": "lungcad_transforms.transforms.lung.enclosure",
    "lung_identities": "lungcad_transforms.transforms.lung.enclosure",
    "dilate_ellipsoid": "lungcad_transforms.transforms.lung.functional",
}
__all__ = sorted(_NAMES)
__getattr__, __dir__ = lazy_exports(__name__, _NAMES, _SUBPACKAGES)
