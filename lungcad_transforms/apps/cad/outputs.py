"""Everything a study's CAD run leaves behind, written into one folder that appears complete or not at all."""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lungcad_transforms.apps.cad.bundles import CADBundles, file_sha256
from lungcad_transforms.utils.atomic import atomic_dir, atomic_file

logger = logging.getLogger(__name__)

__all__ = ["NODULE_COLUMNS", "LUNG_RADS_NOTE", "software_versions", "write_study_outputs"]

# nodules.csv: the LUNA16 results columns first (diameter_mm is the Lung-RADS mean diameter), then these
NODULE_COLUMNS = (
    "long_axis_mm", "short_axis_mm", "mean_diameter_mm", "volume_mm3", "mean_hu", "max_hu", "density",
    "solid_fraction", "solid_mean_diameter_mm", "lung_rads_size_only", "side", "label", "fp_probability",
    "seg_probability",
)  # fmt: skip

LUNG_RADS_NOTE = (
    "lung_rads_size_only: the Lung-RADS v2022 category that the nodule's size and density alone imply at a "
    "baseline screen; not a diagnosis (growth, morphology and the reader's judgement are not included)"
)

ALGORITHM = "lungcad detect"

_MONTAGE_MM = 50.0


def software_versions() -> dict[str, str]:
    """Versions of the packages the chain ran with."""
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("lungcad", "monai", "torch", "numpy", "itk", "pydicom", "highdicom", "vtk", "nibabel"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


@contextlib.contextmanager
def _timed(name: str, timings: dict[str, float]) -> Iterator[None]:
    start = time.perf_counter()
    yield
    timings[name] = round(time.perf_counter() - start, 3)


def _csv_row(uid: str, row: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: row[k] for k in ("coordX", "coordY", "coordZ", "probability")}
    out = {"seriesuid": uid, **out, "diameter_mm": row.get("mean_diameter_mm", row.get("diameter_mm", ""))}
    for key in NODULE_COLUMNS:
        source = "lung_rads_size_category" if key == "lung_rads_size_only" else key
        value = row.get(source, "")
        out[key] = "" if isinstance(value, float) and not np.isfinite(value) else value
    return out


def _montages(folder: Path, hu, heat, spacing, nodules, affine) -> list[str]:
    from lungcad_transforms.data.coords import world_to_voxel
    from lungcad_transforms.visualize.montage import save_montage

    names = []
    half = np.ceil(_MONTAGE_MM / 2.0 / np.asarray(spacing)).astype(int)
    for n, row in enumerate(nodules, start=1):
        centre = world_to_voxel([[row["coordX"], row["coordY"], row["coordZ"]]], affine)[0]
        c = np.clip(np.floor(centre + 0.5).astype(int), 0, np.asarray(hu.shape) - 1)
        lo, hi = np.maximum(c - half, 0), np.minimum(c + half + 1, hu.shape)
        crop = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
        size = f"{row['mean_diameter_mm']:.1f} mm {row['density']}" if "density" in row else "no segmentation"
        name = f"nodule_{n}.png"
        save_montage(
            folder / name, hu[crop], heat[crop], center=tuple(int(v) for v in c - lo), spacing=spacing,
            overlay_kind="heatmap", title=f"nodule {n}: p={row['probability']:.3f}, {size}, {row.get('side', '')} lung",
        )  # fmt: skip
        names.append(name)
    return names


def _dicom_outputs(
    folder: Path, entry, image, labels_source: np.ndarray, nodules, version: str
) -> dict[str, Any]:
    from lungcad_transforms.data.dicom import dicom_series_files
    from lungcad_transforms.data.dicom_seg import check_segmentation, read_source_series, write_segmentation
    from lungcad_transforms.data.dicom_sr import check_measurement_report, write_measurement_report

    files = dicom_series_files(entry["image"], str(image.meta["series_instance_uid"]))
    sources = read_source_series(files, str(image.meta["sop_instance_uids"]).split("\\"))
    segmented = [row for row in nodules if int(row.get("label", 0)) > 0]
    if not segmented:
        return {"dicom_seg": None, "dicom_sr": None, "note": "no segmented nodule: no DICOM SEG / SR written"}
    seg = write_segmentation(
        folder / "nodules_seg.dcm",
        labels_source,
        sources,
        [f"nodule {r['label']}" for r in segmented],
        ALGORITHM,
        version,
    )
    sr_path = folder / "nodules_sr.dcm"
    write_measurement_report(sr_path, seg, segmented, sources, ALGORITHM, version)
    return {
        "dicom_seg": "nodules_seg.dcm",
        "dicom_sr": "nodules_sr.dcm",
        "seg_check": check_segmentation(folder / "nodules_seg.dcm", labels_source, sources),
        "sr_check": check_measurement_report(sr_path, seg, segmented),
        "seg_sop_instance_uid": str(seg.SOPInstanceUID),
    }


def write_study_outputs(
    folder: Path,
    *,
    entry: Mapping[str, Any],
    image: Any,
    hu: np.ndarray,
    spacing: Sequence[float],
    lungs: np.ndarray,
    labels: np.ndarray,
    heat: np.ndarray,
    nodules: list[dict[str, Any]],
    scored: list[dict[str, Any]],
    segmentation: Any,
    bundles: CADBundles,
    threshold: float,
    timings: dict[str, float],
    render: bool = True,
) -> dict[str, Path]:
    """Write a study's outputs into ``folder`` (replaced as a whole; see the README's output table).

    Returns:
        output name -> path.
    """
    from monai.utils import convert_to_numpy

    from lungcad_transforms.apps.cad.report import write_report_html
    from lungcad_transforms.data.image_writer import to_source_grid, write_image
    from lungcad_transforms.data.tables import write_results_csv
    from lungcad_transforms.visualize.render import render_lungs

    start = time.perf_counter()
    uid = str(image.meta["seriesuid"])
    affine = convert_to_numpy(image.affine, dtype=np.float64)
    versions = software_versions()
    steps: dict[str, float] = {}
    with atomic_dir(folder) as tmp:
        with _timed("tables", steps):
            if nodules:
                write_results_csv([_csv_row(uid, r) for r in nodules], tmp / "nodules.csv")
            else:
                _header_only(tmp / "nodules.csv")
            if scored:
                write_results_csv(scored, tmp / "candidates_scored.csv")
        with _timed("nifti", steps):
            # on the input's own grid (shape, affine and axis order of the file / series given)
            write_image(lungs, tmp / "lung_mask.nii.gz", like=image, dtype=np.uint8)
            write_image(labels, tmp / "nodule_labels.nii.gz", like=image, dtype=np.uint16)
            write_image(heat, tmp / "gradcam.nii.gz", like=image, dtype=np.float32, mode="bilinear")
            if segmentation.probability_path is not None and segmentation.probability_path.is_file():
                shutil.copyfile(segmentation.probability_path, tmp / "nodule_probability.nii.gz")
        dicom: dict[str, Any] = {}
        if str(image.meta.get("sop_instance_uids") or ""):
            with _timed("dicom seg + sr", steps):
                labels_source, _ = to_source_grid(labels, like=image)
                dicom = _dicom_outputs(tmp, entry, image, labels_source, nodules, versions["lungcad"])
        pictures: dict[str, Any] = {"renderings": [], "montages": []}
        if render:
            with _timed("rendering", steps):
                shown = lungs | (labels > 0)  # the lungs and the nodules, juxtapleural ones included
                for side in ("right", "left"):
                    path, method = render_lungs(
                        tmp / f"render_{side}.png", hu, shown, spacing, heat, side=side
                    )
                    pictures["renderings"].append({"file": path.name, "side": side, "method": method})
            with _timed("montages", steps):
                pictures["montages"] = _montages(tmp, hu, heat, spacing, nodules, affine)
        timings = {**timings, "outputs": round(time.perf_counter() - start, 3)}
        report = {
            "seriesuid": uid,
            "input": str(image.meta.get("filename_or_obj")),
            "modality": str(image.meta.get("modality") or ""),
            "shape": [int(s) for s in hu.shape],
            "spacing_mm": [round(float(s), 4) for s in spacing],
            "threshold": threshold,
            "n_candidates": len(segmentation.candidates),
            "n_nodules": len(nodules),
            "nodules": [_jsonable(r) for r in nodules],
            "lung_volume_ml": round(float(lungs.sum()) * float(np.prod(spacing)) / 1000.0, 1),
            "lung_rads_note": LUNG_RADS_NOTE,
            "segmentation_settings": segmentation.settings,
            "timings_s": timings,
            "output_timings_s": steps,
            "versions": versions,
            "weights": {
                name: {"path": str(path), "sha256": file_sha256(path)}
                for name, path in bundles.weights.items()
            },
            "dicom": dicom,
            "pictures": pictures,
        }
        with atomic_file(tmp / "report.json") as f:
            f.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        write_report_html(tmp / "report.html", report, tmp)
    return {p.name: folder / p.name for p in sorted(folder.iterdir())}


def _header_only(path: Path) -> None:
    from lungcad_transforms.data.tables import RESULTS_COLUMNS

    columns = [*RESULTS_COLUMNS, "diameter_mm", *NODULE_COLUMNS]
    with atomic_file(path) as tmp:
        tmp.write_text(",".join(columns) + "\n", encoding="utf-8")


def _jsonable(row: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in row.items():
        if isinstance(value, (np.floating, float)):
            value = None if not np.isfinite(value) else float(value)
        elif isinstance(value, np.integer):
            value = int(value)
        out[key] = value
    return out
