"""Registration: PET onto the MR grid by world geometry or mutual-information registration (ITK-Elastix)."""

from __future__ import annotations

from lungcad_transforms.utils.lazy import lazy_exports

_SUBPACKAGES = ()
_NAMES = {
    "PETToSUV": "lungcad_transforms.transforms.registration.array",
    "AlignPETToMR": "lungcad_transforms.transforms.registration.array",
    "patient_id_of": "lungcad_transforms.transforms.registration.array",
    "MIN_SLICES_3D": "lungcad_transforms.transforms.registration.array",
    "PETToSUVd": "lungcad_transforms.transforms.registration.dictionary",
    "PETToSUVD": "lungcad_transforms.transforms.registration.dictionary",
    "PETToSUVDict": "lungcad_transforms.transforms.registration.dictionary",
    "AlignPETToMRd": "lungcad_transforms.transforms.registration.dictionary",
    "AlignPETToMRD": "lungcad_transforms.transforms.registration.dictionary",
    "AlignPETToMRDict": "lungcad_transforms.transforms.registration.dictionary",
    "REGISTRATION_TRANSFORMS": "lungcad_transforms.transforms.registration.functional",
    "elastix_parameter_map": "lungcad_transforms.transforms.registration.functional",
    "register_mutual_information": "lungcad_transforms.transforms.registration.functional",
    "transform_matrix_lps": "lungcad_transforms.transforms.registration.functional",
    "resample_through": "lungcad_transforms.transforms.registration.functional",
    "normalized_mutual_information": "lungcad_transforms.transforms.registration.functional",
    "mask_dice": "lungcad_transforms.transforms.registration.functional",
    "rigid_error": "lungcad_transforms.transforms.registration.functional",
    "save_registration": "lungcad_transforms.transforms.registration.functional",
}
__all__ = sorted(_NAMES)
__getattr__, __dir__ = lazy_exports(__name__, _NAMES, _SUBPACKAGES)
