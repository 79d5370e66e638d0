"""Ignite handler that saves 3D Grad-CAM heatmaps of scored candidates."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
from monai.data.utils import affine_to_spacing
from monai.utils import convert_to_numpy

from lungcad_transforms.data.csv_table import write_table
from lungcad_transforms.data.tables import GRADCAM_ANNOTATED_COLUMNS, GRADCAM_COLUMNS
from lungcad_transforms.handlers.candidate_scores import CandidateScoresHandler
from lungcad_transforms.utils.atomic import atomic_file
from lungcad_transforms.visualize.gradcam import (
    CandidateGradCAM,
    _unwrap,
    heatmap_scale_index,
    heatmap_to_scan,
    peak_inside_nodule,
)

logger = logging.getLogger(__name__)

__all__ = ["GradCAMSaver"]


class GradCAMSaver(CandidateScoresHandler):
    """Engine handler: Grad-CAM heatmaps (NIfTI on the scan file's grid) and montages (PNG) of the candidates called nodules.

    During the run it records every candidate's probability; at the end it takes those at or above
    ``threshold``, computes their Grad-CAM from the dataset's cached patches, loads each of their scans
    once, and writes under ``output_dir``:

    - ``<seriesuid>_<n>_gradcam.nii.gz``: the heatmap (float32, 0..1) on the voxel grid of the scan file
      (same shape, affine and axis order), zero outside the candidate's patch;
    - ``<seriesuid>_<n>_gradcam.png``: axial, coronal and sagittal slices through the candidate, heatmap on top;
    - ``gradcam.csv``: one line per explained candidate (its row, probability, files, heatmap peak in
      LUNA16 world mm and, with annotations, whether the peak lies inside a nodule);
    - ``gradcam_summary.json``: counts, and with annotations the fraction of true positives whose
      heatmap peak lies inside their nodule.

    Args:
        network: the network the engine runs.
        dataset: the ``patches.MultiScalePatchDataset`` the engine iterates.
        output_dir: where the files go.
        threshold: probability at or above which a candidate counts as a nodule.
        annotations: optional nodule annotations (path or rows) for the peak-inside-nodule measure.
        target_layer: the layer to explain (default: the last convolution block).
        max_candidates: explain at most this many (the most probable first); None: all.
        montage_mm: side of the region drawn around the candidate in the montage.
        logits: the engine's predictions are logits (a sigmoid is applied).
        device: device for the Grad-CAM passes (default: the network's).

    Examples:
        >>> GradCAMSaver(net, dataset, "outputs/gradcam", threshold=0.5).attach(evaluator)  # doctest: +SKIP
    """

    def __init__(
        self,
        network: nn.Module,
        dataset: Any,
        output_dir: str | os.PathLike,
        threshold: float = 0.5,
        annotations: Any = None,
        target_layer: str | None = None,
        max_candidates: int | None = None,
        montage_mm: float = 60.0,
        logits: bool = True,
        device: str | torch.device | None = None,
    ) -> None:
        super().__init__(logits)
        self.network = network
        self.dataset = dataset
        self.output_dir = Path(output_dir)
        self.threshold = float(threshold)
        self.annotations = annotations
        self.target_layer = target_layer
        self.max_candidates = max_candidates
        self.montage_mm = float(montage_mm)
        self.device = device
        self.summary: dict[str, Any] = {}

    def scores_complete(self, scores: dict[int, float]) -> None:
        self.explain(scores)

    def explain(self, scores: Mapping[int, float]) -> dict[str, Any]:
        """Explain the candidates of ``scores`` (dataset index -> probability) at or above the threshold."""
        from lungcad_transforms.data.coords import voxel_to_world, world_to_voxel
        from lungcad_transforms.data.image_reader import load_image
        from lungcad_transforms.data.image_writer import write_image
        from lungcad_transforms.data.tables import read_annotations
        from lungcad_transforms.visualize.montage import save_montage

        records = self.dataset.records
        chosen = sorted(
            (i for i, p in scores.items() if p >= self.threshold and not records[i].get("synthetic")),
            key=lambda i: -scores[i],
        )
        if self.max_candidates is not None:
            chosen = chosen[: self.max_candidates]
        annotations = self.annotations
        if isinstance(annotations, (str, os.PathLike)):
            annotations = read_annotations(annotations)
        net = _unwrap(self.network)
        device = torch.device(self.device) if self.device is not None else next(net.parameters()).device
        cam = CandidateGradCAM(net, self.target_layer)
        scale = heatmap_scale_index(net)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        lines: list[dict[str, Any]] = []
        by_series: dict[str, list[int]] = {}
        for index in chosen:
            by_series.setdefault(str(records[index]["seriesuid"]), []).append(index)
        for uid, indices in by_series.items():
            geometry = self.dataset.scan_geometry[uid]
            image = load_image({"image": geometry["image"], "seriesuid": uid})
            scan_affine = np.asarray(image.affine, dtype=np.float64)
            hu = convert_to_numpy(image[0])
            spacing = affine_to_spacing(scan_affine, r=3, suppress_zeros=False)
            patches = torch.as_tensor(self.dataset.patches[indices].astype(np.float32), device=device)
            maps = cam(patches).cpu().numpy()[:, 0]
            for n, (index, heat) in enumerate(zip(indices, maps, strict=True)):
                record = records[index]
                values, box = heatmap_to_scan(heat, self.dataset.affines[index, scale], scan_affine, hu.shape)
                volume = np.zeros(hu.shape, np.float32)
                volume[box] = values
                stem = f"{uid}_{n}_gradcam"
                # on the scan file's own voxel grid, so it overlays the user's input voxel by voxel
                nifti = write_image(volume, self.output_dir / f"{stem}.nii.gz", like=image, dtype=np.float32)
                # an all-zero map (no positive evidence in the target layer) has no peak
                peak = None
                if float(volume.max()) > 0.0:
                    peak_voxel = np.unravel_index(int(np.argmax(volume)), volume.shape)
                    peak = voxel_to_world(np.asarray(peak_voxel, dtype=np.float64), scan_affine)[0]
                centre = world_to_voxel([record["coordX"], record["coordY"], record["coordZ"]], scan_affine)[
                    0
                ]
                centre_index = np.clip(np.floor(centre + 0.5).astype(int), 0, np.asarray(hu.shape) - 1)
                half = np.ceil(self.montage_mm / 2.0 / spacing).astype(int)
                lo = np.maximum(centre_index - half, 0)
                hi = np.minimum(centre_index + half + 1, hu.shape)
                crop = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
                png = save_montage(
                    self.output_dir / f"{stem}.png",
                    hu[crop],
                    volume[crop],
                    center=tuple(int(v) for v in centre_index - lo),
                    spacing=tuple(float(s) for s in spacing),
                    overlay_kind="heatmap",
                    title=f"{uid[-16:]} candidate ({record['coordX']:.1f}, {record['coordY']:.1f}, "
                    f"{record['coordZ']:.1f}) p={scores[index]:.3f}",
                )
                line = {
                    "seriesuid": uid,
                    "coordX": record["coordX"],
                    "coordY": record["coordY"],
                    "coordZ": record["coordZ"],
                    "probability": scores[index],
                    "label": int(record.get("class", -1)),
                    "peakX": "" if peak is None else float(peak[0]),
                    "peakY": "" if peak is None else float(peak[1]),
                    "peakZ": "" if peak is None else float(peak[2]),
                    "heatmap": nifti.name,
                    "montage": png.name,
                }
                if annotations is not None:
                    centre_lps = (record["coordX"], record["coordY"], record["coordZ"])
                    line["candidate_on_nodule"] = int(peak_inside_nodule(centre_lps, uid, annotations))
                    line["peak_inside_nodule"] = int(
                        peak is not None and peak_inside_nodule(peak, uid, annotations)
                    )
                lines.append(line)
        columns = [*GRADCAM_COLUMNS, *(GRADCAM_ANNOTATED_COLUMNS if annotations is not None else ())]
        write_table(lines, self.output_dir / "gradcam.csv", columns)
        summary: dict[str, Any] = {
            "empty_heatmaps": sum(1 for ln in lines if ln["peakX"] == ""),
            "explained": len(lines),
            "threshold": self.threshold,
            "target_layer": cam.target_layer,
            "heatmap_scale": scale,
        }
        if annotations is not None:
            # true positives: candidates called nodules whose centre lies in an annotated nodule (LUNA16 hit)
            true_pos = [ln for ln in lines if ln["candidate_on_nodule"]]
            inside = sum(ln["peak_inside_nodule"] for ln in true_pos)
            summary.update(
                true_positives_explained=len(true_pos),
                peaks_inside_nodule=inside,
                fraction_peak_inside_nodule=(inside / len(true_pos)) if true_pos else None,
            )
        with atomic_file(self.output_dir / "gradcam_summary.json") as tmp:
            tmp.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        logger.info("Grad-CAM: %s", summary)
        self.summary = summary
        return summary
