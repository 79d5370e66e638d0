"""Montages, Grad-CAM heatmaps and FROC plots."""

from __future__ import annotations

from lungcad_transforms.visualize.froc_plot import save_froc_report
from lungcad_transforms.visualize.gradcam import (
    CandidateGradCAM,
    captum_gradcam,
    default_target_layer,
    heatmap_scale_index,
    heatmap_to_scan,
    normalize_heatmaps,
    peak_inside_nodule,
)
from lungcad_transforms.visualize.montage import radiological_views, save_montage
