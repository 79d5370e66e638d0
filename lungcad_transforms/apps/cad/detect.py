"""``lungcad detect``: the CAD chain over every CT study of an input, one report each and a summary."""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lungcad_transforms.apps.cad.bundles import CADBundles, resolve_bundles
from lungcad_transforms.apps.cad.study import StudyResult, process_study
from lungcad_transforms.errors import InputError

logger = logging.getLogger(__name__)

__all__ = ["DetectRun", "check_output_folder", "detect"]

SUMMARY_COLUMNS = ("seriesuid", "status", "n_candidates", "n_nodules", "max_probability", "folder", "reason")


@dataclass
class DetectRun:
    """The outcome of a run: the studies processed, those skipped (with why), the summary table."""

    studies: list[StudyResult] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    summary: Path | None = None


def check_output_folder(out_dir: str | os.PathLike) -> Path:
    """Create ``out_dir`` if needed and make sure files can be written in it.

    Raises:
        InputError: it cannot be created or written to (read-only, no permission, a file in the way).
    """
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".write-test."):
            pass
    except OSError as err:
        raise InputError(out, f"output folder cannot be written: {err.strerror or err}") from err
    return out


def _write_summary(out: Path, run: DetectRun) -> Path:
    from lungcad_transforms.data.csv_table import write_table

    rows: list[dict[str, Any]] = [
        {
            "seriesuid": s.seriesuid, "status": "done", "n_candidates": s.n_candidates, "n_nodules": len(s.nodules),
            "max_probability": max((float(n["probability"]) for n in s.nodules), default=""),
            "folder": s.folder.name, "reason": "",
        }
        for s in run.studies
    ]  # fmt: skip
    rows += [
        {"seriesuid": uid, "status": "skipped", "n_candidates": "", "n_nodules": "", "max_probability": "",
         "folder": "", "reason": why}
        for uid, why in run.skipped
    ]  # fmt: skip
    return write_table(rows, out / "summary.csv", list(SUMMARY_COLUMNS), ["seriesuid", "status"], ())


def detect(
    input_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    bundle_dir: str | os.PathLike | CADBundles | None = None,
    threshold: float | None = None,
    device: str | None = None,
    progress: bool = True,
    render: bool = True,
) -> DetectRun:
    """Run the CAD chain on every CT study found in ``input_path``; write ``out_dir/<seriesuid>/`` per study.

    Args:
        input_path: a DICOM folder (any depth, several series: each CT series is one study), a NIfTI /
            MetaImage / NRRD file, or a folder of them.
        out_dir: output folder; gets one folder per study and ``summary.csv``.
        bundle_dir: folder holding the two bundles (default: the repository's ``bundles/``), or the
            :class:`CADBundles` themselves.
        threshold: nodule probability to keep a candidate (default: the FP bundle's ``nodule_threshold``).
        device: torch device (default: CUDA when present, else CPU).
        progress: a progress bar per study.
        render: write volume renderings and montages.

    Returns:
        the run; a study that fails is logged, listed in ``skipped`` and in ``summary.csv``, and leaves
        no folder.

    Raises:
        InputError: the output folder is not writable, the bundles or their weights are missing, or the
            input holds no image.
    """
    from lungcad_transforms.data.image_reader import find_images

    out = check_output_folder(out_dir)
    bundles = bundle_dir if isinstance(bundle_dir, CADBundles) else resolve_bundles(bundle_dir)
    missing = bundles.missing_weights()
    if missing:
        raise InputError(
            missing[0],
            "no trained weights: train the bundle (`make demo` trains both briefly on the built-in data) or "
            "point --bundle-dir at a folder holding trained bundles",
        )
    entries = find_images(input_path)
    run = DetectRun()
    for entry in entries:
        uid = str(entry.get("seriesuid") or entry["image"])
        try:
            result = process_study(entry, out, bundles, threshold, device, progress, render)
        except InputError as err:
            logger.error("study %s skipped: %s", uid, err)
            run.skipped.append((uid, str(err)))
            continue
        logger.info("study %s: %d nodule(s) -> %s", uid, len(result.nodules), result.folder)
        run.studies.append(result)
    run.summary = _write_summary(out, run)
    return run
