"""MR/PET: paired synthetic chest MR + PET studies, patients on one grid, slice samples, results and Grad-CAM."""

from __future__ import annotations

from lungcad_transforms.utils.lazy import lazy_exports

_SUBPACKAGES = ()
_NAMES = {
    "PAIR_KINDS": "lungcad_transforms.apps.mrpet.phantom_pairs",
    "MRPETDataSettings": "lungcad_transforms.apps.mrpet.phantom_pairs",
    "rigid_matrix_lps": "lungcad_transforms.apps.mrpet.phantom_pairs",
    "make_mrpet_pair": "lungcad_transforms.apps.mrpet.phantom_pairs",
    "ensure_mrpet_dataset": "lungcad_transforms.apps.mrpet.phantom_pairs",
    "SLICE_COLUMNS": "lungcad_transforms.apps.mrpet.results",
    "PATIENT_COLUMNS": "lungcad_transforms.apps.mrpet.results",
    "MRPETResultsWriter": "lungcad_transforms.apps.mrpet.results",
    "save_gradcam_overlay": "lungcad_transforms.apps.mrpet.results",
    "UNKNOWN_LABEL": "lungcad_transforms.apps.mrpet.slices",
    "MRPETSliceDataset": "lungcad_transforms.apps.mrpet.slices",
    "patient_scores": "lungcad_transforms.apps.mrpet.slices",
    "MODES": "lungcad_transforms.apps.mrpet.volumes",
    "MODE_KEYS": "lungcad_transforms.apps.mrpet.volumes",
    "mode_keys": "lungcad_transforms.apps.mrpet.volumes",
    "mrpet_datalist": "lungcad_transforms.apps.mrpet.volumes",
    "pair_dicom_studies": "lungcad_transforms.apps.mrpet.volumes",
    "MRPETVolumed": "lungcad_transforms.apps.mrpet.volumes",
}
__all__ = sorted(_NAMES)
__getattr__, __dir__ = lazy_exports(__name__, _NAMES, _SUBPACKAGES)
