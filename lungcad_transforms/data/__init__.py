"""The I/O boundary: image reading and writing, DICOM series, coordinates, CSV tables, datasets."""

from __future__ import annotations

from lungcad_transforms.data.coords import (
    LPS_TO_RAS,
    affine_lps,
    inside_volume,
    voxel_to_world,
    world_to_voxel,
)
from lungcad_transforms.data.datasets import REPO_ROOT, SkipBadScansDataset, bundle_dir, resolve_scans
from lungcad_transforms.data.dicom import ITKDicomSeriesReader, dicom_series_files
from lungcad_transforms.data.dicom_writer import write_dicom_series
from lungcad_transforms.data.image_reader import VOLUME_SUFFIXES, find_images, load_image
from lungcad_transforms.data.image_writer import save_nifti, write_metaimage, write_nifti
from lungcad_transforms.data.suv import suv_body_weight_factor
from lungcad_transforms.data.tables import (
    ANNOTATION_COLUMNS,
    CANDIDATE_COLUMNS,
    LUNA16_ANNOTATION_COLUMNS,
    RESULTS_COLUMNS,
    Records,
    TableSource,
    read_annotations,
    read_candidates,
    read_candidates_lenient,
    read_seriesuids,
    write_annotations_csv,
    write_candidates_csv,
    write_results_csv,
)
