"""`lungcad demo`: the CAD chain end to end on a synthetic DICOM study (the embedded default)."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np

from lungcad_transforms.utils.atomic import atomic_file

logger = logging.getLogger(__name__)

__all__ = ["DEMO_NODULE_KINDS", "run_demo"]

DEMO_NODULE_KINDS = ("solid", "part_solid", "juxtapleural", "ground_glass")


def run_demo(
    out_dir: str | os.PathLike, seed: int = 0, bundle_dir: str | os.PathLike | None = None
) -> dict[str, Path]:
    """The main job on the embedded default: a synthetic CT study as DICOM through ``lungcad detect``.

    Writes under ``out_dir``: ``phantom_dicom/`` (the study, one file per slice), ``annotations.csv``
    (its nodules in LUNA16 form), ``bundles/`` (weights trained briefly on the bundles' built-in data
    when the bundles have none: said on the console, reused on later runs), ``detect/<seriesuid>/``
    (the chain's outputs: ``report.html``, ``nodules.csv``, DICOM SEG and SR, ...) and ``summary.json``
    (the nodules found against the phantom's truth).

    Returns:
        name -> path of the main outputs, ``report`` last.
    """
    from lungcad_transforms.apps.cad.bundles import resolve_bundles
    from lungcad_transforms.apps.cad.detect import detect
    from lungcad_transforms.apps.cad.training import ensure_trained_bundles
    from lungcad_transforms.apps.phantoms.ct import make_ct_phantom
    from lungcad_transforms.data.dicom_writer import write_dicom_series
    from lungcad_transforms.data.tables import write_annotations_csv
    from lungcad_transforms.metrics.froc import froc_score

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    phantom = make_ct_phantom(
        shape=(160, 160, 128), spacing=(0.8, 0.8, 1.25), seed=seed, nodule_kinds=DEMO_NODULE_KINDS,
        nodule_diameter_mm=(6.0, 16.0),
    )  # fmt: skip
    dicom_dir = write_dicom_series(
        phantom.hu,
        phantom.spacing,
        phantom.origin_lps,
        out / "phantom_dicom",
        modality="CT",
        seriesuid=phantom.seriesuid,
    )
    truth = [
        {"seriesuid": phantom.seriesuid, "coordX": n.center_lps[0], "coordY": n.center_lps[1],
         "coordZ": n.center_lps[2], "diameter_mm": n.diameter_mm}
        for n in phantom.nodules
    ]  # fmt: skip
    annotations = write_annotations_csv(truth, out / "annotations.csv")
    bundles = ensure_trained_bundles(resolve_bundles(bundle_dir), out / "bundles")
    run = detect(dicom_dir, out / "detect", bundles)
    if not run.studies:
        raise RuntimeError(f"the demo study was not processed: {run.skipped}")
    study = run.studies[0]
    found = froc_score(annotations, study.nodules, [phantom.seriesuid]) if study.nodules else None
    summary = {
        "seriesuid": phantom.seriesuid,
        "truth": [{**t, "kind": n.kind} for t, n in zip(truth, phantom.nodules, strict=True)],
        "nodules_found": len(study.nodules),
        "true_nodules_detected": found.detected_nodules if found else 0,
        "false_positives": found.n_false_positives if found else 0,
        "mean_diameters_mm": [n.get("mean_diameter_mm") for n in study.nodules],
        "weights": {"segmentation": str(bundles.segmentation), "fp_reduction": str(bundles.fp_reduction)},
        "timings_s": study.timings,
    }
    summary_path = out / "summary.json"
    with atomic_file(summary_path) as tmp:
        tmp.write_text(
            json.dumps(
                summary, indent=2, default=lambda v: float(v) if isinstance(v, np.floating) else str(v)
            )
        )
    logger.info("demo summary: %s", summary)
    return {
        "dicom series": dicom_dir,
        "annotations": annotations,
        "nodules": study.folder / "nodules.csv",
        "summary": summary_path,
        "report": study.folder / "report.html",
    }
