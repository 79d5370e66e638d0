"""PET/CT: paired synthetic FDG PET/CT studies (the PET/CT classifier's embedded data)."""

from __future__ import annotations

from lungcad_transforms.utils.lazy import lazy_exports

_SUBPACKAGES = ()
_NAMES = {
    "PATIENT_KINDS": "lungcad_transforms.apps.petct.phantom_studies",
    "make_petct_study": "lungcad_transforms.apps.petct.phantom_studies",
    "ensure_petct_dataset": "lungcad_transforms.apps.petct.phantom_studies",
    "PETCTSliceDataset": "lungcad_transforms.apps.petct.slice_dataset",
    "read_petct_datalist": "lungcad_transforms.apps.petct.slice_dataset",
    "split_by_patient": "lungcad_transforms.apps.petct.slice_dataset",
    "PairedStudies": "lungcad_transforms.apps.petct.study_pairing",
    "pair_petct_studies": "lungcad_transforms.apps.petct.study_pairing",
}
__all__ = sorted(_NAMES)
__getattr__, __dir__ = lazy_exports(__name__, _NAMES, _SUBPACKAGES)
