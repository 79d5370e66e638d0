"""Nodule detection data: candidate patch datasets and phantom candidate tables."""

from __future__ import annotations

from lungcad_transforms.utils.lazy import lazy_exports

_SUBPACKAGES = ()
_NAMES = {
    "load_extra_positives": "lungcad_transforms.apps.detection.candidate_dataset",
    "MultiScalePatchDataset": "lungcad_transforms.apps.detection.candidate_dataset",
    "HARD_NEGATIVE_KINDS": "lungcad_transforms.apps.detection.phantom_candidates",
    "phantom_candidates": "lungcad_transforms.apps.detection.phantom_candidates",
    "ensure_fp_dataset": "lungcad_transforms.apps.detection.phantom_candidates",
    "label_candidates": "lungcad_transforms.apps.detection.segmentation_candidates",
}
__all__ = sorted(_NAMES)
__getattr__, __dir__ = lazy_exports(__name__, _NAMES, _SUBPACKAGES)
