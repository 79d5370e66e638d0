"""Ignite handlers shared by the lungcad bundles."""

from __future__ import annotations

import importlib

_NAMES = {
    "CandidateCPM": "lungcad_transforms.handlers.candidate_scores",
    "CandidateScoresHandler": "lungcad_transforms.handlers.candidate_scores",
    "CandidateResultsWriter": "lungcad_transforms.handlers.candidate_scores",
    "GradCAMSaver": "lungcad_transforms.handlers.gradcam_saver",
    "NoduleCandidatesHandler": "lungcad_transforms.handlers.nodule_candidates",
}
_SUBPACKAGES = ()
__all__ = sorted(_NAMES)


def __getattr__(name: str):
    # names and subpackages load on first use: importing a package pulls in nothing heavy (itk, monai)
    if name in _NAMES:
        return getattr(importlib.import_module(_NAMES[name]), name)
    if name in _SUBPACKAGES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_NAMES) | set(_SUBPACKAGES))
