"""Metrics of the field: LUNA16 FROC / CPM."""

from __future__ import annotations

from lungcad_transforms.utils.lazy import lazy_exports

_SUBPACKAGES = ()
_NAMES = {
    "CLASSIFICATION_METRICS": "lungcad_transforms.metrics.classification",
    "PATIENT_RULES": "lungcad_transforms.metrics.classification",
    "aggregate_by_patient": "lungcad_transforms.metrics.classification",
    "binary_classification_report": "lungcad_transforms.metrics.classification",
    "bootstrap_ci": "lungcad_transforms.metrics.classification",
    "paired_bootstrap_auc_difference": "lungcad_transforms.metrics.classification",
    "roc_auc": "lungcad_transforms.metrics.classification",
    "FROC_FP_RATES": "lungcad_transforms.metrics.froc",
    "MAX_CANDIDATES_PER_SCAN": "lungcad_transforms.metrics.froc",
    "MISSING_DIAMETER_MM": "lungcad_transforms.metrics.froc",
    "FROCResult": "lungcad_transforms.metrics.froc",
    "froc_score": "lungcad_transforms.metrics.froc",
    "scan_indices": "lungcad_transforms.metrics.froc_matching",
    "hits_within_radius": "lungcad_transforms.metrics.froc_matching",
    "cap_per_scan": "lungcad_transforms.metrics.froc_matching",
}
__all__ = sorted(_NAMES)
__getattr__, __dir__ = lazy_exports(__name__, _NAMES, _SUBPACKAGES)
