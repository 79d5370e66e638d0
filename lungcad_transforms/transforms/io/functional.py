"""The one check that an image is a CT in Hounsfield units, shared by every transform that needs one."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from monai.config import NdarrayOrTensor
from monai.data import MetaTensor

from lungcad_transforms.errors import InputError

__all__ = ["check_ct", "declared_modality", "source_name"]

# metadata keys under which the modality arrives: ours (load_image, a datalist entry), the ``Modality``
# line of a MetaImage header (ITK), the DICOM tag (ITK's GDCM reader)
_MODALITY_KEYS = ("modality", "Modality", "0008|0060")

# values that say nothing about the modality: ITK reports MET_MOD_UNKNOWN for a MetaImage header without
# a Modality line (every LUNA16 scan), and DICOM "OT" means "other"
_UNKNOWN_MODALITIES = frozenset({"", "UNKNOWN", "OT", "OTHER", "NONE"})

# a CT in Hounsfield units has air at about -1000 HU; without any value below this it cannot be one
_HU_AIR_CEILING = -500.0

# bone is about +1000 HU, metal a few thousand; DICOM stores CT in 16 bits, so HU never exceed this
_HU_MAX = 32767.0


def source_name(img: Any) -> str:
    """The file an image came from (``meta["filename_or_obj"]``, the first of a batch), else ``"<array>"``.

    Examples:
        >>> source_name(MetaTensor(torch.zeros(1), meta={"filename_or_obj": "ct.nii.gz"})), source_name(np.zeros(1))
        ('ct.nii.gz', '<array>')
    """
    if isinstance(img, MetaTensor):
        source = img.meta.get("filename_or_obj")
        if isinstance(source, (list, tuple)):  # collated metadata
            source = source[0] if source else None
        if source:
            return str(source)
    return "<array>"


def _normalised(value: Any) -> str:
    if isinstance(value, (list, tuple)):  # collated metadata
        value = value[0] if value else None
    text = "" if value is None else str(value).strip().upper()
    # MetaImage spells its modalities MET_MOD_CT, MET_MOD_MR, ...
    return text.removeprefix("MET_MOD_")


def declared_modality(meta: Mapping[str, Any]) -> str | None:
    """The modality the metadata declares (``"CT"``, ``"MR"``, ``"PT"``, ...), or ``None`` when it says none.

    An empty value, MetaImage's ``MET_MOD_UNKNOWN`` and DICOM's ``OT`` (other) declare nothing. When the
    keys disagree, a non-CT modality wins: a file whose header says MR is not made a CT by a datalist.

    Examples:
        >>> declared_modality({"modality": "", "Modality": "MET_MOD_UNKNOWN"}) is None  # a LUNA16 .mhd
        True
        >>> declared_modality({"0008|0060": "MR "}), declared_modality({"Modality": "MET_MOD_CT"})
        ('MR', 'CT')
    """
    found = [_normalised(meta.get(key)) for key in _MODALITY_KEYS]
    declared = [m for m in found if m not in _UNKNOWN_MODALITIES]
    if not declared:
        return None
    return next((m for m in declared if m != "CT"), "CT")


def _extremes(values: NdarrayOrTensor, with_max: bool) -> tuple[float, float | None]:
    """(minimum, maximum or None); NaN when the values hold one (min and max propagate it)."""
    if isinstance(values, torch.Tensor):
        if values.is_floating_point() or with_max:
            low, high = torch.aminmax(values)
            return float(low), float(high)
        return float(values.min()), None
    if np.issubdtype(values.dtype, np.floating) or with_max:
        return float(values.min()), float(values.max())
    return float(values.min()), None


def _values(image: NdarrayOrTensor) -> NdarrayOrTensor:
    """The values of ``image`` without metadata, as a numpy view when they are on the CPU."""
    values = image.as_tensor() if isinstance(image, MetaTensor) else image
    if isinstance(values, torch.Tensor):
        values = values.detach()
        # a view, not a copy; numpy's reductions are the faster ones on CPU (numpy has no bfloat16)
        if values.device.type == "cpu" and values.dtype != torch.bfloat16:
            return values.numpy()
    return values


def check_ct(image: NdarrayOrTensor, where: str | None = None, max_air_hu: float = _HU_AIR_CEILING) -> float:
    """Refuse an image that cannot be a CT in Hounsfield units; return its minimum value.

    A declared modality other than CT (``MR``, ``PT``, a MetaImage ``MET_MOD_MR``, ...) is refused. With no
    modality or an unknown one (a LUNA16 ``.mhd``, NIfTI, NRRD, DICOM stripped of its Modality) the values
    decide, as for a declared CT: finite, some below ``max_air_hu`` (every chest CT has air in the lungs
    or around the body, an MR or a PET in SUV has none) and, for an unknown modality, none above 16-bit
    HU (bone and metal included).

    Args:
        image: the image, any shape; a ``MetaTensor`` brings the modality and the file name in its metadata.
        where: names the image in the error; by default its ``filename_or_obj``, else ``"<array>"``.
        max_air_hu: the darkest voxel must be below this for the values to be HU.

    Raises:
        InputError: naming ``where`` and what is wrong.

    Examples:
        >>> luna16 = MetaTensor(torch.tensor([-1024.0, -850.0, 40.0, 1200.0]), meta={"Modality": "MET_MOD_UNKNOWN"})
        >>> check_ct(luna16)
        -1024.0
        >>> check_ct(MetaTensor(torch.tensor([-1000.0, 40.0]), meta={"modality": "MR", "filename_or_obj": "t1.nii"}))
        Traceback (most recent call last):
        ...
        lungcad_transforms.errors.InputError: t1.nii: modality is 'MR', not CT
    """
    where = where or source_name(image)
    modality = declared_modality(image.meta) if isinstance(image, MetaTensor) else None
    if modality is not None and modality != "CT":
        raise InputError(where, f"modality is {modality!r}, not CT")
    values = _values(image)
    if isinstance(values, torch.Tensor):
        numeric = not (values.dtype == torch.bool or values.is_complex())
        size, narrow = values.numel(), values.element_size() <= 2
    else:
        numeric = np.issubdtype(values.dtype, np.integer) or np.issubdtype(values.dtype, np.floating)
        size, narrow = values.size, values.itemsize <= 2
    if not numeric:
        raise InputError(where, f"has dtype {values.dtype}; a CT holds integer or floating-point HU values")
    if size == 0:
        raise InputError(where, f"is empty (shape {tuple(values.shape)})")
    # integers of 16 bits or fewer cannot exceed the HU range: no second pass over the volume for them
    low, high = _extremes(values, with_max=modality is None and not narrow)
    if not (np.isfinite(low) and (high is None or np.isfinite(high))):
        finite = torch.isfinite(values) if isinstance(values, torch.Tensor) else np.isfinite(values)
        raise InputError(where, f"contains {int((~finite).sum())} NaN or infinite values")
    if low >= max_air_hu:
        raise InputError(
            where,
            f"values are not CT Hounsfield units: nothing below {max_air_hu:g} (no air; air is about "
            f"-1000 HU), minimum {low:g}",
        )
    if modality is None and high is not None and high > _HU_MAX:
        raise InputError(
            where,
            f"values are not CT Hounsfield units: maximum {high:g}, above the {_HU_MAX:g} of 16-bit CT "
            "(and no modality says it is a CT)",
        )
    return low
