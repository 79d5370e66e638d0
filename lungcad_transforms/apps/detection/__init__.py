"""Nodule detection data: candidate patch datasets and phantom candidate tables."""

from __future__ import annotations

from lungcad_transforms.apps.detection.candidate_dataset import MultiScalePatchDataset, load_extra_positives
from lungcad_transforms.apps.detection.phantom_candidates import (
    HARD_NEGATIVE_KINDS,
    ensure_fp_dataset,
    phantom_candidates,
)
