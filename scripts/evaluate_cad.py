"""The chained CAD (``lungcad detect``) on a labelled split: FROC/CPM, sensitivity and FP at the operating
threshold, and how well the reported diameters and volumes match the ground-truth masks.

Runs :func:`lungcad_transforms.apps.cad.detect` on every scan of one split of a dataset folder in the
bundles' layout (``datalist.json``, ``annotations.csv``, optional ``excluded.csv``, labels numbering the
nodules), then scores:

- ``candidates_scored.csv`` of each study (every segmentation candidate with its FP-reduction probability)
  with the LUNA16 FROC (:func:`~lungcad_transforms.metrics.froc.froc_score`): the chained CPM;
- ``nodules.csv`` (the candidates kept at the operating threshold): sensitivity and false positives per scan;
- each kept nodule that hits a ground-truth nodule of at least ``--min-diameter`` mm: its mean axial
  diameter and volume against the same measurements (:func:`~lungcad_transforms.apps.cad.measure.axial_diameters`)
  made on that nodule's ground-truth mask on the scan's own grid.

Usage (the segmentation bundle's built-in test split, the repository's trained bundles)::

    python scripts/evaluate_cad.py --dataset-dir bundles/lung_nodule_ct_segmentation/data/embedded \\
        --split test --out outputs/cad_eval
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger("evaluate_cad")

REPO = Path(__file__).resolve().parents[1]


def _ground_truth(entry: dict[str, Any], base: Path) -> list[dict[str, Any]]:
    """Per labelled nodule of a scan: its voxels' world centre (LPS), mean axial diameter and volume."""
    from monai.data.utils import affine_to_spacing

    from lungcad_transforms.apps.cad.measure import axial_diameters
    from lungcad_transforms.data.coords import voxel_to_world
    from lungcad_transforms.data.image_reader import load_image

    label = load_image(base / entry["label"])
    values = np.asarray(label[0]).astype(np.int64)
    affine = np.asarray(label.affine, dtype=np.float64)
    spacing = affine_to_spacing(affine, r=3).astype(np.float64)
    found = []
    for n in np.unique(values[values > 0]):
        mask = values == n
        long_mm, short_mm, _ = axial_diameters(mask, spacing)
        centre = voxel_to_world(np.argwhere(mask).mean(axis=0)[None], affine)[0]
        found.append(
            {
                "label": int(n),
                "centre_lps": centre,
                "mean_diameter_mm": (long_mm + short_mm) / 2.0,
                "volume_mm3": float(mask.sum() * spacing.prod()),
            }
        )
    return found


def _measurement_errors(
    nodules: list[dict[str, Any]],
    truth: list[dict[str, Any]],
    annotations: list[dict[str, Any]],
    min_mm: float,
) -> list[dict[str, Any]]:
    """Kept nodules hitting an annotated nodule >= min_mm (LUNA16 hit rule), against its mask's measurements."""
    rows = []
    for mark in annotations:
        if float(mark["diameter_mm"]) < min_mm:
            continue
        centre = np.array([mark["coordX"], mark["coordY"], mark["coordZ"]], dtype=np.float64)
        radius = float(mark["diameter_mm"]) / 2.0
        hits = [
            n
            for n in nodules
            if np.linalg.norm(np.array([n["coordX"], n["coordY"], n["coordZ"]], dtype=np.float64) - centre)
            < radius
        ]
        if not hits or not truth:
            continue
        best = max(hits, key=lambda n: float(n["probability"]))
        gt = min(truth, key=lambda t: float(np.linalg.norm(t["centre_lps"] - centre)))
        rows.append(
            {
                "seriesuid": mark["seriesuid"],
                "annotated_diameter_mm": float(mark["diameter_mm"]),
                "truth_mean_diameter_mm": round(gt["mean_diameter_mm"], 2),
                "reported_mean_diameter_mm": float(best["mean_diameter_mm"]),
                "diameter_error_mm": round(float(best["mean_diameter_mm"]) - gt["mean_diameter_mm"], 2),
                "truth_volume_mm3": round(gt["volume_mm3"], 1),
                "reported_volume_mm3": float(best["volume_mm3"]),
                "volume_error_fraction": round(float(best["volume_mm3"]) / gt["volume_mm3"] - 1.0, 3),
            }
        )
    return rows


def evaluate(args: argparse.Namespace) -> dict[str, Any]:
    from lungcad_transforms.apps.cad.bundles import resolve_bundles
    from lungcad_transforms.apps.cad.detect import detect
    from lungcad_transforms.data.tables import read_annotations, read_candidates_lenient
    from lungcad_transforms.metrics.froc import froc_score

    base = Path(args.dataset_dir).resolve()
    datalist = json.loads((base / "datalist.json").read_text(encoding="utf-8"))[args.split]
    annotations = read_annotations(base / "annotations.csv")
    excluded = base / "excluded.csv" if (base / "excluded.csv").is_file() else None
    bundles = resolve_bundles(args.bundle_dir)
    out = Path(args.out)
    scored: list[dict[str, Any]] = []
    kept: list[dict[str, Any]] = []
    uids: list[str] = []
    measured: list[dict[str, Any]] = []
    per_scan: list[dict[str, Any]] = []
    thresholds = set()
    started = time.perf_counter()
    for entry in datalist:
        uid = str(entry["seriesuid"])
        image = entry["image"] if Path(entry["image"]).is_absolute() else str(base / entry["image"])
        t0 = time.perf_counter()
        run = detect(image, out / "detect", bundles, threshold=args.threshold, progress=False, render=False)
        if not run.studies:
            raise SystemExit(f"{image}: not processed: {run.skipped}")
        study = run.studies[0]
        report = json.loads((study.folder / "report.json").read_text(encoding="utf-8"))
        thresholds.add(float(report["threshold"]))
        rows, problems = (
            read_candidates_lenient(study.folder / "candidates_scored.csv")
            if (study.folder / "candidates_scored.csv").is_file()
            else ([], [])
        )
        for row in rows:
            row["seriesuid"] = uid
        nodules = [{**n, "seriesuid": uid} for n in study.nodules]
        scored += rows
        kept += nodules
        uids.append(uid)
        marks = [a for a in annotations if a["seriesuid"] == uid]
        measured += _measurement_errors(nodules, _ground_truth(entry, base), marks, args.min_diameter)
        per_scan.append(
            {
                "seriesuid": uid,
                "candidates": len(rows),
                "kept": len(nodules),
                "nodules": len(marks),
                "seconds": round(time.perf_counter() - t0, 1),
                "timings_s": study.timings,
            }  # fmt: skip
        )
        logger.info("%s: %d candidates, %d kept, %d annotated", uid, len(rows), len(nodules), len(marks))
    chained = froc_score(annotations, scored, uids, excluded=excluded, n_bootstrap=1000, seed=0)
    operating = froc_score(annotations, kept, uids, excluded=excluded) if kept else None
    diam_ok = [abs(r["diameter_error_mm"]) <= 1.5 for r in measured]
    vol_ok = [abs(r["volume_error_fraction"]) <= 0.25 for r in measured]
    return {
        "dataset_dir": str(base),
        "split": args.split,
        "scans": len(uids),
        "threshold": sorted(thresholds),
        "chained_cpm": round(float(chained.cpm), 4),
        "chained_cpm_ci": [round(float(v), 4) for v in chained.cpm_ci]
        if chained.cpm_ci is not None
        else None,
        "chained_sensitivities": [round(float(v), 4) for v in chained.sensitivities],
        "candidate_auc": None if chained.auc is None else round(float(chained.auc), 4),
        "nodules": int(chained.total_nodules),
        "candidates_per_scan": round(len(scored) / max(len(uids), 1), 2),
        "sensitivity_at_threshold": 0.0
        if operating is None
        else round(operating.detected_nodules / operating.total_nodules, 4),
        "fp_per_scan_at_threshold": 0.0
        if operating is None
        else round(operating.n_false_positives / len(uids), 3),
        "measured_nodules": len(measured),
        "diameter_within_1_5_mm": f"{sum(diam_ok)}/{len(measured)}",
        "volume_within_25_percent": f"{sum(vol_ok)}/{len(measured)}",
        "mean_abs_diameter_error_mm": round(
            float(np.mean([abs(r["diameter_error_mm"]) for r in measured])), 3
        )
        if measured
        else None,
        "median_abs_volume_error": round(
            float(np.median([abs(r["volume_error_fraction"]) for r in measured])), 3
        )
        if measured
        else None,
        "measurements": measured,
        "per_scan": per_scan,
        "seconds": round(time.perf_counter() - started, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--dataset-dir", default=str(REPO / "bundles/lung_nodule_ct_segmentation/data/embedded")
    )
    parser.add_argument("--split", default="test")
    parser.add_argument("--bundle-dir", default=None, help="trained bundles (default: the repository's)")
    parser.add_argument("--threshold", type=float, default=None, help="default: the FP bundle's own")
    parser.add_argument(
        "--min-diameter", type=float, default=6.0, help="nodules measured: at least this (mm)"
    )
    parser.add_argument("--out", required=True)
    parser.add_argument("--json", default=None, help="write the figures here too")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    figures = evaluate(args)
    text = json.dumps(figures, indent=2, default=float)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
