"""Atomic outputs, file locks and checkpoint guards."""

from __future__ import annotations

import importlib

_NAMES = {
    "atomic_file": "lungcad_transforms.utils.atomic",
    "atomic_dir": "lungcad_transforms.utils.atomic",
    "require_checkpoint": "lungcad_transforms.utils.checkpoint",
    "load_checkpoint": "lungcad_transforms.utils.checkpoint",
    "dataset_lock": "lungcad_transforms.utils.locks",
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
