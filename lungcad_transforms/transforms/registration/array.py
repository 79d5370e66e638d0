"""Registration transforms: PET (in SUV where its tags allow) onto the MR grid, by world geometry when both
share a Frame of Reference, else by mutual-information registration (ITK-Elastix), with its quality."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.data import MetaTensor
from monai.transforms import Transform
from monai.utils import TransformBackends

from lungcad_transforms.errors import InputError
from lungcad_transforms.transforms.registration.functional import (
    REGISTRATION_TRANSFORMS,
    mask_dice,
    normalized_mutual_information,
    register_mutual_information,
    resample_through,
)

logger = logging.getLogger(__name__)

__all__ = ["PETToSUV", "AlignPETToMR", "patient_id_of", "MIN_SLICES_3D"]

#: fewest voxels along every axis for a 3-D operation (registration pyramid, 3-D network)
MIN_SLICES_3D = 4


def _where(img: Any) -> str:
    return str(img.meta.get("filename_or_obj", "<image>")) if isinstance(img, MetaTensor) else "<image>"


def patient_id_of(img: MetaTensor) -> str:
    """The DICOM PatientID of a loaded DICOM series (``""`` for NIfTI / MetaImage or no tag)."""
    import pydicom

    source = Path(str(img.meta.get("filename_or_obj", "")))
    files = sorted(source.glob("*")) if source.is_dir() else [source]
    for f in files:
        if f.is_file() and not f.name.lower().endswith((".nii", ".nii.gz", ".mha", ".mhd", ".nrrd")):
            try:
                return str(
                    pydicom.dcmread(f, stop_before_pixels=True, specific_tags=["PatientID"]).get(
                        "PatientID", ""
                    )
                )
            except (pydicom.errors.InvalidDicomError, OSError):
                continue
    return ""


class PETToSUV(Transform):
    """A PET in body-weight SUV when its DICOM tags allow, else as stored; the choice is logged and put in
    ``meta["pet_units"]`` (``"suv"`` or ``"as stored"``).

    Args:
        units: ``"auto"`` (SUV from the header of a DICOM PET, as stored otherwise), ``"bqml"`` (SUV
            required: missing tags are an error) or ``"suv"`` (already SUV: kept).
    """

    backend = [TransformBackends.TORCH]

    def __init__(self, units: str = "auto") -> None:
        if units not in ("auto", "bqml", "suv"):
            raise ValueError(f"units must be 'auto', 'bqml' or 'suv', got {units!r}")
        self.units = units

    def __call__(self, pet: MetaTensor) -> MetaTensor:
        from lungcad_transforms.transforms.intensity.array import SUVBodyWeight

        if self.units == "suv":
            pet.meta["pet_units"] = "suv"
            return pet
        is_dicom = str(pet.meta.get("modality", "") or "").upper() == "PT"
        if self.units == "auto" and not is_dicom:
            logger.info("%s: not a DICOM PET, taken as stored (SUV assumed)", _where(pet))
            pet.meta["pet_units"] = "as stored"
            return pet
        try:
            out = SUVBodyWeight()(pet)
        except InputError as err:
            if self.units == "bqml":
                raise
            logger.warning("%s: no SUV (%s); PET taken as stored", _where(pet), err.problem)
            pet.meta["pet_units"] = "as stored"
            return pet
        out.meta["pet_units"] = "suv"
        logger.info("%s: PET in SUV (factor %.4g)", _where(pet), out.meta["suv_factor"])
        return out


class AlignPETToMR(Transform):
    """Bring a PET onto the MR's voxel grid and say how well the two are aligned.

    Same DICOM Frame of Reference: resampled on world geometry (ITK linear, 0 outside the PET's field
    of view), as ``ResampleToMatch`` does. Otherwise (other studies, or files without the UID such as
    NIfTI, when ``registration="auto"``): Mattes mutual-information registration of PET to MR with
    ITK-Elastix (rigid, optionally affine) starting from world geometry, and the PET resampled through
    the found transform. ``meta["registration"]`` of the result records the method, the fixed->moving
    matrix (LPS mm), normalised mutual information before and after, the share of the MR grid the PET
    covers, and, given masks, their Dice before and after.

    Args:
        registration: ``"auto"`` (register unless both share a Frame of Reference), ``"always"`` or
            ``"never"`` (world geometry only).
        transform: ``"rigid"`` or ``"affine"``.
        min_overlap: least share of the MR grid the aligned PET must cover.
        iterations: Elastix iterations per resolution.
        check_patient: refuse a DICOM MR and PET whose PatientIDs differ.

    Raises:
        InputError: different patients, a 2-D image where registration needs 3-D, a failed registration,
            or an aligned PET covering less than ``min_overlap`` of the MR.

    Examples:
        >>> mr, pet = load_image("study/MR"), load_image("study/PT")  # doctest: +SKIP
        >>> pet_on_mr = AlignPETToMR()(mr, PETToSUV()(pet))  # doctest: +SKIP
        >>> pet_on_mr.shape == mr.shape, pet_on_mr.meta["registration"]["method"]  # doctest: +SKIP
        (True, 'world')
    """

    backend = [TransformBackends.TORCH]

    def __init__(
        self,
        registration: str = "auto",
        transform: str = "rigid",
        min_overlap: float = 0.2,
        iterations: int = 800,
        check_patient: bool = True,
    ) -> None:
        if registration not in ("auto", "always", "never"):
            raise ValueError(f"registration must be 'auto', 'always' or 'never', got {registration!r}")
        if transform not in REGISTRATION_TRANSFORMS:
            raise ValueError(f"transform must be one of {sorted(REGISTRATION_TRANSFORMS)}, got {transform!r}")
        self.registration, self.transform = registration, transform
        self.min_overlap, self.iterations, self.check_patient = (
            float(min_overlap),
            int(iterations),
            check_patient,
        )

    def _same_frame(self, mr: MetaTensor, pet: MetaTensor) -> bool:
        a = str(mr.meta.get("frame_of_reference_uid", "") or "")
        b = str(pet.meta.get("frame_of_reference_uid", "") or "")
        return bool(a) and a == b

    def __call__(
        self,
        mr: MetaTensor,
        pet: MetaTensor,
        mr_mask: MetaTensor | None = None,
        pet_mask: MetaTensor | None = None,
    ) -> MetaTensor:
        if self.check_patient:
            a, b = patient_id_of(mr), patient_id_of(pet)
            if a and b and a != b:
                raise InputError(
                    _where(pet), f"PET of patient {b!r} paired with the MR of patient {a!r} ({_where(mr)})"
                )
        register = self.registration == "always" or (
            self.registration == "auto" and not self._same_frame(mr, pet)
        )
        record: dict[str, Any] = {"method": self.transform if register else "world", "matrix_lps": None}
        if register:
            for img, name in ((mr, "MR"), (pet, "PET")):
                if min(img.shape[1:]) < MIN_SLICES_3D:
                    raise InputError(_where(img), f"{name} is 2-D (shape {tuple(img.shape[1:])}): registration needs "
                                                  f"a 3-D volume of at least {MIN_SLICES_3D} voxels along each axis")  # fmt: skip
        ones = MetaTensor(torch.ones_like(pet.as_tensor()), affine=pet.affine)
        world = resample_through(pet, mr)
        covered_before = resample_through(ones, mr, mode="nearest").as_tensor() > 0.5
        record["nmi_before"] = normalized_mutual_information(mr, world, covered_before)
        matrix = None
        if register:
            found = register_mutual_information(mr, pet, self.transform, self.iterations)
            matrix = np.asarray(found["matrix_lps"])
            record.update({k: found[k] for k in ("matrix_lps", "parameters", "center_lps", "parameter_map")})
            out = resample_through(pet, mr, matrix)
            covered = resample_through(ones, mr, matrix, mode="nearest").as_tensor() > 0.5
        else:
            out, covered = world, covered_before
        record["overlap_fraction"] = float(covered.float().mean())
        record["nmi_after"] = normalized_mutual_information(mr, out, covered)
        if mr_mask is not None and pet_mask is not None:
            record["mask_dice_before"] = mask_dice(mr_mask, resample_through(pet_mask, mr, mode="nearest"))
            record["mask_dice_after"] = mask_dice(
                mr_mask, resample_through(pet_mask, mr, matrix, mode="nearest")
            )
        if record["overlap_fraction"] < self.min_overlap:
            raise InputError(_where(pet), f"after {record['method']} alignment the PET covers "
                                          f"{record['overlap_fraction']:.1%} of the MR ({_where(mr)}), less than "
                                          f"{self.min_overlap:.0%}: the two images do not overlap")  # fmt: skip
        logger.info("%s -> %s: %s alignment, NMI %.3f -> %.3f, PET covers %.0f%% of the MR", _where(pet), _where(mr),
                    record["method"], record["nmi_before"], record["nmi_after"], 100 * record["overlap_fraction"])  # fmt: skip
        out.meta.update(
            {k: v for k, v in pet.meta.items() if k in ("suv_factor", "pet_units", "filename_or_obj")}
        )
        out.meta["registration"] = record
        return out
