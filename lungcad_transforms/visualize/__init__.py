"""Montages, Grad-CAM heatmaps and FROC plots."""

from __future__ import annotations

from lungcad_transforms.utils.lazy import lazy_exports

_SUBPACKAGES = ()
_NAMES = {
    "cell_centred_upsampler": "lungcad_transforms.visualize.cam_placement",
    "map_cell_centres": "lungcad_transforms.visualize.cam_placement",
    "save_confusion_matrix_png": "lungcad_transforms.visualize.classification_plots",
    "save_roc_png": "lungcad_transforms.visualize.classification_plots",
    "save_froc_report": "lungcad_transforms.visualize.froc_plot",
    "unwrap_network": "lungcad_transforms.visualize.gradcam",
    "default_target_layer": "lungcad_transforms.visualize.gradcam",
    "normalize_heatmaps": "lungcad_transforms.visualize.gradcam",
    "CandidateGradCAM": "lungcad_transforms.visualize.gradcam",
    "captum_gradcam": "lungcad_transforms.visualize.gradcam",
    "heatmap_scale_index": "lungcad_transforms.visualize.gradcam",
    "heatmap_to_scan": "lungcad_transforms.visualize.gradcam",
    "peak_inside_nodule": "lungcad_transforms.visualize.gradcam",
    "radiological_views": "lungcad_transforms.visualize.montage",
    "save_montage": "lungcad_transforms.visualize.montage",
    "otsu_transfer_points": "lungcad_transforms.visualize.render",
    "render_lungs": "lungcad_transforms.visualize.render",
    "vtk_offscreen_available": "lungcad_transforms.visualize.render",
    "ClassContrast": "lungcad_transforms.visualize.slice_cam",
    "flip_averaged": "lungcad_transforms.visualize.slice_cam",
    "class_gradcam": "lungcad_transforms.visualize.slice_cam",
    "slice_cams": "lungcad_transforms.visualize.slice_cam",
    "captum_slice_gradcam": "lungcad_transforms.visualize.slice_cam",
    "heatmap_peak": "lungcad_transforms.visualize.slice_cam",
    "save_petct_cam_png": "lungcad_transforms.visualize.slice_cam",
}
__all__ = sorted(_NAMES)
__getattr__, __dir__ = lazy_exports(__name__, _NAMES, _SUBPACKAGES)
