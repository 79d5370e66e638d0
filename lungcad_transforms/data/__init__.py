"""The I/O boundary: image reading and writing, DICOM series, coordinates, CSV tables, datasets."""

from __future__ import annotations

import importlib

_NAMES = {
    "LPS_TO_RAS": "lungcad_transforms.data.coords",
    "affine_lps": "lungcad_transforms.data.coords",
    "world_to_voxel": "lungcad_transforms.data.coords",
    "voxel_to_world": "lungcad_transforms.data.coords",
    "inside_volume": "lungcad_transforms.data.coords",
    "resolve_scans": "lungcad_transforms.data.datasets",
    "REPO_ROOT": "lungcad_transforms.data.datasets",
    "bundle_dir": "lungcad_transforms.data.datasets",
    "SkipBadScansDataset": "lungcad_transforms.data.datasets",
    "dicom_series_files": "lungcad_transforms.data.dicom",
    "ITKDicomSeriesReader": "lungcad_transforms.data.dicom",
    "write_dicom_series": "lungcad_transforms.data.dicom_writer",
    "VOLUME_SUFFIXES": "lungcad_transforms.data.image_reader",
    "find_images": "lungcad_transforms.data.image_reader",
    "load_image": "lungcad_transforms.data.image_reader",
    "write_nifti": "lungcad_transforms.data.image_writer",
    "write_metaimage": "lungcad_transforms.data.image_writer",
    "save_nifti": "lungcad_transforms.data.image_writer",
    "suv_body_weight_factor": "lungcad_transforms.data.suv",
    "ANNOTATION_COLUMNS": "lungcad_transforms.data.tables",
    "CANDIDATE_COLUMNS": "lungcad_transforms.data.tables",
    "read_annotations": "lungcad_transforms.data.tables",
    "read_candidates": "lungcad_transforms.data.tables",
    "read_candidates_lenient": "lungcad_transforms.data.tables",
    "LUNA16_ANNOTATION_COLUMNS": "lungcad_transforms.data.tables",
    "write_annotations_csv": "lungcad_transforms.data.tables",
    "write_candidates_csv": "lungcad_transforms.data.tables",
    "RESULTS_COLUMNS": "lungcad_transforms.data.tables",
    "Records": "lungcad_transforms.data.tables",
    "TableSource": "lungcad_transforms.data.tables",
    "read_seriesuids": "lungcad_transforms.data.tables",
    "write_results_csv": "lungcad_transforms.data.tables",
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
