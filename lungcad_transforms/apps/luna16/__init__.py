"""LUNA16: dataset preparation and the FROC / CPM evaluation command."""

from __future__ import annotations

import importlib

_NAMES = {
    "evaluate_files": "lungcad_transforms.apps.luna16.evaluation",
    "add_froc_arguments": "lungcad_transforms.apps.luna16.evaluation",
    "froc_command": "lungcad_transforms.apps.luna16.evaluation",
    "prepare_luna16_dataset": "lungcad_transforms.apps.luna16.prepare",
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
