"""lungcad transforms, MONAI style: an array transform in ``<area>/array.py``, its dictionary twin and
aliases in ``<area>/dictionary.py``, pure functions in ``<area>/functional.py``."""

from __future__ import annotations

import importlib

_NAMES = {
    "SUVBodyWeight": "lungcad_transforms.transforms.intensity.array",
    "EmptyMaskWarning": "lungcad_transforms.transforms.intensity.array",
    "MaskedNormalizeIntensity": "lungcad_transforms.transforms.intensity.array",
    "SUVBodyWeightd": "lungcad_transforms.transforms.intensity.dictionary",
    "SUVBodyWeightD": "lungcad_transforms.transforms.intensity.dictionary",
    "SUVBodyWeightDict": "lungcad_transforms.transforms.intensity.dictionary",
    "MaskedNormalizeIntensityd": "lungcad_transforms.transforms.intensity.dictionary",
    "MaskedNormalizeIntensityD": "lungcad_transforms.transforms.intensity.dictionary",
    "MaskedNormalizeIntensityDict": "lungcad_transforms.transforms.intensity.dictionary",
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
    "NoLungWarning": "lungcad_transforms.transforms.lung.array",
    "LungMask": "lungcad_transforms.transforms.lung.array",
    "LungMaskd": "lungcad_transforms.transforms.lung.dictionary",
    "LungMaskD": "lungcad_transforms.transforms.lung.dictionary",
    "LungMaskDict": "lungcad_transforms.transforms.lung.dictionary",
    "dilate_ellipsoid": "lungcad_transforms.transforms.lung.functional",
    "LoadPETCT": "lungcad_transforms.transforms.petct.array",
    "PETCTChannels": "lungcad_transforms.transforms.petct.array",
    "LoadPETCTd": "lungcad_transforms.transforms.petct.dictionary",
    "LoadPETCTD": "lungcad_transforms.transforms.petct.dictionary",
    "LoadPETCTDict": "lungcad_transforms.transforms.petct.dictionary",
    "PETCTChannelsd": "lungcad_transforms.transforms.petct.dictionary",
    "PETCTChannelsD": "lungcad_transforms.transforms.petct.dictionary",
    "PETCTChannelsDict": "lungcad_transforms.transforms.petct.dictionary",
    "CT_WINDOWS": "lungcad_transforms.transforms.petct.functional",
    "CHANNEL_MODES": "lungcad_transforms.transforms.petct.functional",
    "ct_window_bounds": "lungcad_transforms.transforms.petct.functional",
    "petct_channels": "lungcad_transforms.transforms.petct.functional",
    "check_same_frame": "lungcad_transforms.transforms.petct.functional",
    "ExtractCandidates": "lungcad_transforms.transforms.post.array",
    "ExtractCandidatesd": "lungcad_transforms.transforms.post.dictionary",
    "ExtractCandidatesD": "lungcad_transforms.transforms.post.dictionary",
    "ExtractCandidatesDict": "lungcad_transforms.transforms.post.dictionary",
    "extract_candidates": "lungcad_transforms.transforms.post.functional",
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
_SUBPACKAGES = ("intensity", "io", "lung", "petct", "post", "spatial")
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
