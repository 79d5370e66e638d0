"""Montages, Grad-CAM heatmaps and FROC plots."""

from __future__ import annotations

import importlib

_NAMES = {
    "save_froc_report": "lungcad_transforms.visualize.froc_plot",
    "default_target_layer": "lungcad_transforms.visualize.gradcam",
    "normalize_heatmaps": "lungcad_transforms.visualize.gradcam",
    "CandidateGradCAM": "lungcad_transforms.visualize.gradcam",
    "captum_gradcam": "lungcad_transforms.visualize.gradcam",
    "heatmap_scale_index": "lungcad_transforms.visualize.gradcam",
    "heatmap_to_scan": "lungcad_transforms.visualize.gradcam",
    "peak_inside_nodule": "lungcad_transforms.visualize.gradcam",
    "radiological_views": "lungcad_transforms.visualize.montage",
    "save_montage": "lungcad_transforms.visualize.montage",
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
