"""Ignite handlers shared by the lungcad bundles."""

from __future__ import annotations

from lungcad_transforms.handlers.candidate_scores import (
    CandidateCPM,
    CandidateResultsWriter,
    CandidateScoresHandler,
)
from lungcad_transforms.handlers.gradcam_saver import GradCAMSaver
from lungcad_transforms.handlers.nodule_candidates import NoduleCandidatesHandler
