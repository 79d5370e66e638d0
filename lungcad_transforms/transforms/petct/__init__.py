"""PET/CT transforms: PET onto the CT grid in SUV, CT windows, the network's channel stack."""

from __future__ import annotations

from lungcad_transforms.utils.lazy import lazy_exports

_SUBPACKAGES = ()
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
__all__ = sorted(_NAMES)
__getattr__, __dir__ = lazy_exports(__name__, _NAMES, _SUBPACKAGES)
