"""Transforms that load, check and save scans."""

from __future__ import annotations

from lungcad_transforms.utils.lazy import lazy_exports

_SUBPACKAGES = ()
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
__all__ = sorted(_NAMES)
__getattr__, __dir__ = lazy_exports(__name__, _NAMES, _SUBPACKAGES)
