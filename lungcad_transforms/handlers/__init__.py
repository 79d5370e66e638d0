"""Ignite handlers shared by the lungcad bundles."""

from __future__ import annotations

from lungcad_transforms.utils.lazy import lazy_exports

_SUBPACKAGES = ()
_NAMES = {
    "CAMSaver": "lungcad_transforms.handlers.cam_saver",
    "CandidateCPM": "lungcad_transforms.handlers.candidate_scores",
    "CandidateScoresHandler": "lungcad_transforms.handlers.candidate_scores",
    "CandidateResultsWriter": "lungcad_transforms.handlers.candidate_scores",
    "PATIENT_LEVELS": "lungcad_transforms.handlers.classification_report",
    "positive_class_scores": "lungcad_transforms.handlers.classification_report",
    "SliceScoresHandler": "lungcad_transforms.handlers.classification_report",
    "ClassificationReportWriter": "lungcad_transforms.handlers.classification_report",
    "GradCAMSaver": "lungcad_transforms.handlers.gradcam_saver",
    "GradientClipping": "lungcad_transforms.handlers.gradient_clipping",
    "NoduleCandidatesHandler": "lungcad_transforms.handlers.nodule_candidates",
    "RunCollector": "lungcad_transforms.handlers.run_collector",
}
__all__ = sorted(_NAMES)
__getattr__, __dir__ = lazy_exports(__name__, _NAMES, _SUBPACKAGES)
