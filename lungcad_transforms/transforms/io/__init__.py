"""Transforms that load, check and save scans."""

from __future__ import annotations

import importlib

_NAMES = {
    "ValidateCT": "lungcad_transforms.transforms.io.array",
    "LoadScan": "lungcad_transforms.transforms.io.array",
    "ValidateCTd": "lungcad_transforms.transforms.io.dictionary",
    "ValidateCTD": "lungcad_transforms.transforms.io.dictionary",
    "ValidateCTDict": "lungcad_transforms.transforms.io.dictionary",
    "LoadScand": "lungcad_transforms.transforms.io.dictionary",
    "LoadScanD": "lungcad_transforms.transforms.io.dictionary",
    "LoadScanDict": "lungcad_transforms.transforms.io.dictionary",
    "RequireForegroundd": "lungcad_transforms.transforms.io.dictionary",
    "RequireForegroundD": "lungcad_transforms.transforms.io.dictionary",
    "RequireForegroundDict": "lungcad_transforms.transforms.io.dictionary",
    "SaveNiftid": "lungcad_transforms.transforms.io.dictionary",
    "SaveNiftiD": "lungcad_transforms.transforms.io.dictionary",
    "SaveNiftiDict": "lungcad_transforms.transforms.io.dictionary",
    "check_ct": "lungcad_transforms.transforms.io.functional",
    "declared_modality": "lungcad_transforms.transforms.io.functional",
    "source_name": "lungcad_transforms.transforms.io.functional",
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
