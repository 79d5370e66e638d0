"""The I/O boundary: image reading and writing, DICOM series, coordinates, CSV tables, datasets."""

from __future__ import annotations

import importlib

_NAMES = {
    "LPS_TO_RAS": "lungcad_transforms.data.coords",
    "affine_lps": "lungcad_transforms.data.coords",
    "lps_to_ras_affine": "lungcad_transforms.data.coords",
    "ras_to_lps_affine": "lungcad_transforms.data.coords",
    "world_to_voxel": "lungcad_transforms.data.coords",
    "voxel_to_world": "lungcad_transforms.data.coords",
    "inside_volume": "lungcad_transforms.data.coords",
    "Table": "lungcad_transforms.data.csv_table",
    "read_csv_rows": "lungcad_transforms.data.csv_table",
    "read_table": "lungcad_transforms.data.csv_table",
    "check_records": "lungcad_transforms.data.csv_table",
    "format_value": "lungcad_transforms.data.csv_table",
    "write_table": "lungcad_transforms.data.csv_table",
    "resolve_scans": "lungcad_transforms.data.datasets",
    "REPO_ROOT": "lungcad_transforms.data.datasets",
    "bundle_dir": "lungcad_transforms.data.datasets",
    "SkipBadScansDataset": "lungcad_transforms.data.datasets",
    "dicom_series_files": "lungcad_transforms.data.dicom",
    "dicom_series_slices": "lungcad_transforms.data.dicom",
    "ITKDicomSeriesReader": "lungcad_transforms.data.dicom",
    "write_derived_series": "lungcad_transforms.data.dicom_derived",
    "write_dicom_series": "lungcad_transforms.data.dicom_writer",
    "check_spacing_header": "lungcad_transforms.data.image_header",
    "nifti_non_finite_count": "lungcad_transforms.data.image_header",
    "VOLUME_SUFFIXES": "lungcad_transforms.data.image_reader",
    "SOURCE_KEYS": "lungcad_transforms.data.image_reader",
    "DICOM_UID_KEYS": "lungcad_transforms.data.image_reader",
    "find_images": "lungcad_transforms.data.image_reader",
    "load_image": "lungcad_transforms.data.image_reader",
    "write_image": "lungcad_transforms.data.image_writer",
    "to_source_grid": "lungcad_transforms.data.image_writer",
    "save_nifti": "lungcad_transforms.data.image_writer",
    "write_nifti": "lungcad_transforms.data.image_writer",
    "write_metaimage": "lungcad_transforms.data.image_writer",
    "suv_body_weight_factor": "lungcad_transforms.data.suv",
    "COORD_COLUMNS": "lungcad_transforms.data.tables",
    "CANDIDATE_COLUMNS": "lungcad_transforms.data.tables",
    "ANNOTATION_COLUMNS": "lungcad_transforms.data.tables",
    "LABELLED_CANDIDATE_COLUMNS": "lungcad_transforms.data.tables",
    "RESULTS_COLUMNS": "lungcad_transforms.data.tables",
    "SEGMENTATION_CANDIDATE_COLUMNS": "lungcad_transforms.data.tables",
    "FROC_CURVE_COLUMNS": "lungcad_transforms.data.tables",
    "Records": "lungcad_transforms.data.tables",
    "TableSource": "lungcad_transforms.data.tables",
    "PointTable": "lungcad_transforms.data.tables",
    "read_annotations": "lungcad_transforms.data.tables",
    "read_candidates": "lungcad_transforms.data.tables",
    "read_candidates_lenient": "lungcad_transforms.data.tables",
    "read_seriesuids": "lungcad_transforms.data.tables",
    "read_point_table": "lungcad_transforms.data.tables",
    "write_annotations_csv": "lungcad_transforms.data.tables",
    "write_candidates_csv": "lungcad_transforms.data.tables",
    "write_results_csv": "lungcad_transforms.data.tables",
    "write_seriesuids": "lungcad_transforms.data.tables",
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
