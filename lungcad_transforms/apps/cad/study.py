"""One study through the CAD chain: load, lung mask, candidates, scores, Grad-CAM, measurements, outputs."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lungcad_transforms.apps.cad.bundles import CADBundles, run_fp_reduction, run_segmentation
from lungcad_transforms.errors import InputError

logger = logging.getLogger(__name__)

__all__ = ["STAGES", "StudyResult", "check_study_entry", "process_study", "study_folder_name"]

STAGES = ("load", "lung mask", "segmentation", "fp reduction", "grad-cam", "measurements", "outputs")


@dataclass
class StudyResult:
    """What one study gave: its folder, nodules and stage timings (seconds)."""

    seriesuid: str
    folder: Path
    nodules: list[dict[str, Any]]
    n_candidates: int
    timings: dict[str, float] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)


def study_folder_name(seriesuid: str) -> str:
    """The study's folder name under the output folder: its series UID (or file id), made path-safe."""
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in seriesuid) or "study"


def _image_type(entry: Mapping[str, Any]) -> list[str]:
    import pydicom

    image = entry["image"]
    first = image[0] if isinstance(image, (list, tuple)) else image
    path = Path(first)
    if path.is_dir():
        path = next((p for p in sorted(path.iterdir()) if p.is_file() and not p.name.startswith(".")), path)
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["ImageType"])
    except Exception:  # noqa: BLE001 - not DICOM (NIfTI, MetaImage): no image type
        return []
    return [str(v).upper() for v in (ds.get("ImageType") or [])]


def check_study_entry(entry: Mapping[str, Any]) -> None:
    """Refuse what cannot be a CT study before loading it: another modality, a localiser / scout.

    Raises:
        InputError: naming the series and the reason.
    """
    where = entry["image"][0] if isinstance(entry["image"], (list, tuple)) else entry["image"]
    modality = str(entry.get("modality") or "")
    if modality and modality != "CT":
        raise InputError(where, f"series {entry.get('seriesuid')} is {modality}, not CT: skipped")
    image_type = _image_type(entry)
    if "LOCALIZER" in image_type or "SCOUT" in image_type:
        raise InputError(
            where, f"is a localiser / scout image (ImageType {'/'.join(image_type)}), not a CT volume"
        )


@contextlib.contextmanager
def _stage(name: str, timings: dict[str, float], bar: Any) -> Iterator[None]:
    start = time.perf_counter()
    bar.set_postfix_str(name)
    yield
    timings[name] = round(time.perf_counter() - start, 3)
    logger.info("stage %-13s %7.2f s", name, timings[name])
    bar.update(1)


def process_study(
    entry: Mapping[str, Any],
    out_root: str | os.PathLike,
    bundles: CADBundles,
    threshold: float | None = None,
    device: str | None = None,
    progress: bool = True,
    render: bool = True,
) -> StudyResult:
    """Run the whole chain on one study and write ``out_root/<seriesuid>/`` (complete, or not at all).

    Args:
        entry: a :func:`~lungcad_transforms.data.image_reader.find_images` entry.
        out_root: the run's output folder.
        bundles: the segmentation and FP-reduction bundles.
        threshold: nodule probability at which a candidate is kept; ``None``: the FP bundle's
            ``nodule_threshold``.
        device: torch device for both networks (default: the bundles' choice, CUDA when present).
        progress: show a progress bar.
        render: write the volume renderings and per-nodule montages.

    Raises:
        InputError: the study cannot be processed (not CT, localiser, unreadable, no lungs, missing slices);
            nothing is left under ``out_root`` for it.
    """
    from monai.data.utils import affine_to_spacing
    from monai.utils import convert_to_numpy
    from tqdm.auto import tqdm

    from lungcad_transforms.apps.cad.nodules import gradcam_volume, label_nodules
    from lungcad_transforms.apps.cad.outputs import write_study_outputs
    from lungcad_transforms.data.image_reader import load_image
    from lungcad_transforms.transforms.io.functional import check_ct
    from lungcad_transforms.transforms.lung.array import LungMask

    check_study_entry(entry)
    timings: dict[str, float] = {}
    out_root = Path(out_root)
    uid = str(entry.get("seriesuid") or "")
    bar = tqdm(total=len(STAGES), desc=f"study {uid[-24:]}", unit="stage", disable=not progress, leave=True)
    work = Path(tempfile.mkdtemp(prefix=".detect-work.", dir=out_root))
    try:
        with _stage("load", timings, bar):
            image = load_image(entry)
            check_ct(image)
            hu = convert_to_numpy(image[0]).astype(np.float32, copy=False)
            affine = convert_to_numpy(image.affine, dtype=np.float64)
            spacing = affine_to_spacing(affine, r=3).astype(np.float64)
        with _stage("lung mask", timings, bar):
            # the lungs themselves (no dilation): the output mask, the side of each nodule, what is rendered;
            # the segmentation bundle grows its own copy by its lung_dilation_mm before searching it
            lungs = convert_to_numpy(LungMask(dilation_mm=0.0)(image))[0] > 0
            if not lungs.any():
                raise InputError(
                    image.meta["filename_or_obj"], "no lungs found in this scan: not a chest CT?"
                )
        with _stage("segmentation", timings, bar):
            seg = run_segmentation(bundles.segmentation, entry, work / "segmentation", device)
            if seg.skipped:
                raise InputError(image.meta["filename_or_obj"], seg.skipped)
        with _stage("fp reduction", timings, bar):
            scoring = (
                run_fp_reduction(bundles.fp_reduction, entry, seg.candidates, work / "fp_reduction", device)
                if seg.candidates
                else None
            )
            cut = threshold if threshold is not None else (scoring.threshold if scoring else 0.5)
            scored = scoring.rows if scoring else []
            kept = [i for i, row in enumerate(scored) if row["probability"] >= cut]
        with _stage("grad-cam", timings, bar):
            heat = (
                gradcam_volume(scoring, kept, affine, hu.shape) if scoring else np.zeros(hu.shape, np.float32)
            )
        with _stage("measurements", timings, bar):
            labels, nodules = label_nodules([scored[i] for i in kept], seg.mask, hu, lungs, affine)
        with _stage("outputs", timings, bar):
            files = write_study_outputs(
                out_root / study_folder_name(image.meta["seriesuid"]),
                entry=entry,
                image=image,
                hu=hu,
                spacing=spacing,
                lungs=lungs,
                labels=labels,
                heat=heat,
                nodules=nodules,
                scored=scored,
                segmentation=seg,
                bundles=bundles,
                threshold=cut,
                timings=timings,
                render=render,
            )
    finally:
        bar.close()
        shutil.rmtree(work, ignore_errors=True)
    return StudyResult(
        seriesuid=str(image.meta["seriesuid"]),
        folder=out_root / study_folder_name(image.meta["seriesuid"]),
        nodules=nodules,
        n_candidates=len(seg.candidates),
        timings=timings,
        files=files,
    )
