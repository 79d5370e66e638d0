"""Metrics of the field: LUNA16 FROC / CPM."""

from __future__ import annotations

from lungcad_transforms.metrics.froc import (
    FROC_FP_RATES,
    MAX_CANDIDATES_PER_SCAN,
    MISSING_DIAMETER_MM,
    FROCResult,
    froc_score,
)
