"""Synthetic CT, PET and MR phantoms with known nodules, and phantom datasets on disk."""

from __future__ import annotations

from lungcad_transforms.utils.lazy import lazy_exports

_SUBPACKAGES = ()
_NAMES = {
    "Anatomy": "lungcad_transforms.apps.phantoms.anatomy",
    "make_ct_phantom": "lungcad_transforms.apps.phantoms.ct",
    "write_phantom_dataset": "lungcad_transforms.apps.phantoms.dataset",
    "ensure_phantom_dataset": "lungcad_transforms.apps.phantoms.dataset",
    "make_anatomy": "lungcad_transforms.apps.phantoms.draw",
    "PATHOLOGY_KINDS": "lungcad_transforms.apps.phantoms.pathology",
    "Finding": "lungcad_transforms.apps.phantoms.pathology",
    "PathologyCTPhantom": "lungcad_transforms.apps.phantoms.pathology",
    "add_pathology": "lungcad_transforms.apps.phantoms.pathology",
    "organ_masks": "lungcad_transforms.apps.phantoms.pathology",
    "make_pet_phantom": "lungcad_transforms.apps.phantoms.pet_mr",
    "make_mr_phantom": "lungcad_transforms.apps.phantoms.pet_mr",
    "NODULE_KINDS": "lungcad_transforms.apps.phantoms.results",
    "Nodule": "lungcad_transforms.apps.phantoms.results",
    "CTPhantom": "lungcad_transforms.apps.phantoms.results",
    "PETPhantom": "lungcad_transforms.apps.phantoms.results",
    "MRPhantom": "lungcad_transforms.apps.phantoms.results",
    "TISSUES": "lungcad_transforms.apps.phantoms.tissues",
}
__all__ = sorted(_NAMES)
__getattr__, __dir__ = lazy_exports(__name__, _NAMES, _SUBPACKAGES)
