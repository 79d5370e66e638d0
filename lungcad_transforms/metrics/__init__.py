"""Metrics of the field: LUNA16 FROC / CPM."""

from __future__ import annotations

import importlib

_NAMES = {
    "FROC_FP_RATES": "lungcad_transforms.metrics.froc",
    "MAX_CANDIDATES_PER_SCAN": "lungcad_transforms.metrics.froc",
    "MISSING_DIAMETER_MM": "lungcad_transforms.metrics.froc",
    "FROCResult": "lungcad_transforms.metrics.froc",
    "froc_score": "lungcad_transforms.metrics.froc",
    "scan_indices": "lungcad_transforms.metrics.froc_matching",
    "hits_within_radius": "lungcad_transforms.metrics.froc_matching",
    "cap_per_scan": "lungcad_transforms.metrics.froc_matching",
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
