"""Synthetic CT, PET and MR phantoms with known nodules, and phantom datasets on disk."""

from __future__ import annotations

import importlib

_NAMES = {
    "Anatomy": "lungcad_transforms.apps.phantoms.anatomy",
    "make_ct_phantom": "lungcad_transforms.apps.phantoms.ct",
    "write_phantom_dataset": "lungcad_transforms.apps.phantoms.dataset",
    "ensure_phantom_dataset": "lungcad_transforms.apps.phantoms.dataset",
    "make_anatomy": "lungcad_transforms.apps.phantoms.draw",
    "make_pet_phantom": "lungcad_transforms.apps.phantoms.pet_mr",
    "make_mr_phantom": "lungcad_transforms.apps.phantoms.pet_mr",
    "NODULE_KINDS": "lungcad_transforms.apps.phantoms.results",
    "Nodule": "lungcad_transforms.apps.phantoms.results",
    "CTPhantom": "lungcad_transforms.apps.phantoms.results",
    "PETPhantom": "lungcad_transforms.apps.phantoms.results",
    "MRPhantom": "lungcad_transforms.apps.phantoms.results",
    "TISSUES": "lungcad_transforms.apps.phantoms.tissues",
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
