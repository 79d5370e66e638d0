"""PET/CT: paired synthetic FDG PET/CT studies (the PET/CT classifier's embedded data)."""

from __future__ import annotations

import importlib

_NAMES = {
    "PATIENT_KINDS": "lungcad_transforms.apps.petct.phantom_studies",
    "make_petct_study": "lungcad_transforms.apps.petct.phantom_studies",
    "ensure_petct_dataset": "lungcad_transforms.apps.petct.phantom_studies",
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
