"""PET/CT transforms: PET onto the CT grid in SUV, CT windows, the network's channel stack."""

from __future__ import annotations

import importlib

_NAMES = {
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
