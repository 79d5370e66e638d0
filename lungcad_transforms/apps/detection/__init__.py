"""Nodule detection data: candidate patch datasets and phantom candidate tables."""

from __future__ import annotations

import importlib

_NAMES = {
    "load_extra_positives": "lungcad_transforms.apps.detection.candidate_dataset",
    "MultiScalePatchDataset": "lungcad_transforms.apps.detection.candidate_dataset",
    "HARD_NEGATIVE_KINDS": "lungcad_transforms.apps.detection.phantom_candidates",
    "phantom_candidates": "lungcad_transforms.apps.detection.phantom_candidates",
    "ensure_fp_dataset": "lungcad_transforms.apps.detection.phantom_candidates",
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
