"""Pure functions of PET/CT input: CT windows, SUV scaling, the channel stack, the frame-of-reference check."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from lungcad_transforms.errors import InputError

__all__ = ["CT_WINDOWS", "CHANNEL_MODES", "ct_window_bounds", "petct_channels", "check_same_frame"]


#: named CT windows as (low, high) HU: lung (W 1500, L -600) and mediastinal (W 350, L 40)
CT_WINDOWS: dict[str, tuple[float, float]] = {"lung": (-1350.0, 150.0), "mediastinal": (-135.0, 215.0)}


#: channel layouts: CT and PET SUV, or CT, PET SUV and their fusion (the mean of the two scaled images)
CHANNEL_MODES: dict[str, tuple[str, ...]] = {"ct_pet": ("ct", "pet"), "ct_pet_fused": ("ct", "pet", "fused")}


def ct_window_bounds(window: str | Sequence[float]) -> tuple[float, float]:
    """``(low, high)`` HU of a named window (:data:`CT_WINDOWS`) or of an explicit pair.

    Examples:
        >>> ct_window_bounds("mediastinal")
        (-135.0, 215.0)
        >>> ct_window_bounds([-1000, 400])
        (-1000.0, 400.0)
    """
    if isinstance(window, str):
        if window not in CT_WINDOWS:
            raise ValueError(
                f"unknown CT window {window!r}; choose one of {', '.join(CT_WINDOWS)} or give [low, high]"
            )
        return CT_WINDOWS[window]
    low, high = (float(v) for v in window)
    if not high > low:
        raise ValueError(f"CT window needs low < high, got {list(window)}")
    return low, high


def petct_channels(
    ct_hu: torch.Tensor, pet_suv: torch.Tensor, window: str | Sequence[float] = "lung", suv_max: float = 10.0,
    mode: str = "ct_pet_fused",
) -> torch.Tensor:  # fmt: skip
    """Stack CT (windowed to [0, 1]) and PET (SUV / ``suv_max`` clipped to [0, 1]) along the channels.

    Args:
        ct_hu: (1, ...) CT in HU.
        pet_suv: (1, ...) PET in SUV on the same grid.
        window: CT window, a name of :data:`CT_WINDOWS` or ``[low, high]`` HU.
        suv_max: SUV shown as 1.
        mode: a layout of :data:`CHANNEL_MODES`.

    Examples:
        >>> x = petct_channels(torch.full((1, 2, 2), 40.0), torch.full((1, 2, 2), 5.0), "mediastinal")
        >>> x.shape, [round(float(v), 3) for v in x[:, 0, 0]]
        (torch.Size([3, 2, 2]), [0.5, 0.5, 0.5])
    """
    if mode not in CHANNEL_MODES:
        raise ValueError(f"unknown channel mode {mode!r}; choose one of {', '.join(CHANNEL_MODES)}")
    if ct_hu.shape != pet_suv.shape:
        raise ValueError(f"CT {tuple(ct_hu.shape)} and PET {tuple(pet_suv.shape)} must share one grid")
    low, high = ct_window_bounds(window)
    ct = ((ct_hu.float() - low) / (high - low)).clamp(0.0, 1.0)
    pet = (pet_suv.float() / float(suv_max)).clamp(0.0, 1.0)
    parts = {"ct": ct, "pet": pet, "fused": 0.5 * (ct + pet)}
    return torch.cat([parts[name] for name in CHANNEL_MODES[mode]], dim=0)


def check_same_frame(
    ct_meta: Mapping[str, Any], pet_meta: Mapping[str, Any], allow_mismatch: bool = False
) -> bool:
    """Refuse a PET and CT in different DICOM Frames of Reference (their world coordinates do not match).

    Returns ``True`` when both carry the same FrameOfReferenceUID, ``False`` when it cannot be told (a
    file without one, e.g. NIfTI) or when a mismatch is allowed.

    Raises:
        InputError: the UIDs differ and ``allow_mismatch`` is false.

    Examples:
        >>> check_same_frame({"frame_of_reference_uid": "1.2"}, {"frame_of_reference_uid": "1.2"})
        True
    """
    ct_uid = str(ct_meta.get("frame_of_reference_uid", "") or "")
    pet_uid = str(pet_meta.get("frame_of_reference_uid", "") or "")
    if not ct_uid or not pet_uid:
        return False
    if ct_uid != pet_uid:
        if allow_mismatch:
            return False
        raise InputError(
            str(pet_meta.get("filename_or_obj", "<pet>")),
            f"PET Frame of Reference {pet_uid} differs from the CT's {ct_uid}: the two are not registered "
            "(set allow_frame_mismatch to resample them on world coordinates anyway)",
        )
    return True
