"""The CAD jobs run from the command line: lung masking of a scan, the demo."""

from __future__ import annotations

from lungcad_transforms.utils.lazy import lazy_exports

_SUBPACKAGES = ()
_NAMES = {
    "SEGMENTATION_BUNDLE": "lungcad_transforms.apps.cad.bundles",
    "FP_REDUCTION_BUNDLE": "lungcad_transforms.apps.cad.bundles",
    "CADBundles": "lungcad_transforms.apps.cad.bundles",
    "SegmentationResult": "lungcad_transforms.apps.cad.bundles",
    "ScoringResult": "lungcad_transforms.apps.cad.bundles",
    "bundle_setting": "lungcad_transforms.apps.cad.bundles",
    "file_sha256": "lungcad_transforms.apps.cad.bundles",
    "resolve_bundles": "lungcad_transforms.apps.cad.bundles",
    "run_segmentation": "lungcad_transforms.apps.cad.bundles",
    "nodule_probability": "lungcad_transforms.apps.cad.bundles",
    "run_fp_reduction": "lungcad_transforms.apps.cad.bundles",
    "register": "lungcad_transforms.apps.cad.cli",
    "DEMO_NODULE_KINDS": "lungcad_transforms.apps.cad.demo",
    "run_demo": "lungcad_transforms.apps.cad.demo",
    "DetectRun": "lungcad_transforms.apps.cad.detect",
    "check_output_folder": "lungcad_transforms.apps.cad.detect",
    "detect": "lungcad_transforms.apps.cad.detect",
    "LungMaskResult": "lungcad_transforms.apps.cad.lungmask",
    "mask_lungs_file": "lungcad_transforms.apps.cad.lungmask",
    "SOLID_HU": "lungcad_transforms.apps.cad.measure",
    "NoduleMeasurement": "lungcad_transforms.apps.cad.measure",
    "axial_diameters": "lungcad_transforms.apps.cad.measure",
    "density_type": "lungcad_transforms.apps.cad.measure",
    "lung_rads_size_category": "lungcad_transforms.apps.cad.measure",
    "lung_side": "lungcad_transforms.apps.cad.measure",
    "measure_nodule": "lungcad_transforms.apps.cad.measure",
    "refine_nodule_mask": "lungcad_transforms.apps.cad.measure",
    "gradcam_volume": "lungcad_transforms.apps.cad.nodules",
    "label_nodules": "lungcad_transforms.apps.cad.nodules",
    "NODULE_COLUMNS": "lungcad_transforms.apps.cad.outputs",
    "LUNG_RADS_NOTE": "lungcad_transforms.apps.cad.outputs",
    "software_versions": "lungcad_transforms.apps.cad.outputs",
    "write_study_outputs": "lungcad_transforms.apps.cad.outputs",
    "write_report_html": "lungcad_transforms.apps.cad.report",
    "STAGES": "lungcad_transforms.apps.cad.study",
    "StudyResult": "lungcad_transforms.apps.cad.study",
    "check_study_entry": "lungcad_transforms.apps.cad.study",
    "process_study": "lungcad_transforms.apps.cad.study",
    "study_folder_name": "lungcad_transforms.apps.cad.study",
    "BRIEF_TRAINING": "lungcad_transforms.apps.cad.training",
    "ensure_trained_bundles": "lungcad_transforms.apps.cad.training",
    "train_fp_on_segmentation_candidates": "lungcad_transforms.apps.cad.training",
}
__all__ = sorted(_NAMES)
__getattr__, __dir__ = lazy_exports(__name__, _NAMES, _SUBPACKAGES)
