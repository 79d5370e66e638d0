"""Ignite handler that explains positive slices: CAM and Grad-CAM overlays, heatmap NIfTI, pointing game."""

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

from lungcad_transforms.handlers.classification_report import SliceScoresHandler
from lungcad_transforms.utils.atomic import atomic_file

logger = logging.getLogger(__name__)

__all__ = ["CAMSaver"]


def _distance_mm(lesion: np.ndarray, pixdim: Any) -> np.ndarray:
    """Distance (mm) of every pixel to the nearest lesion pixel (0 inside)."""
    from scipy.ndimage import distance_transform_edt

    return distance_transform_edt(lesion == 0, sampling=[float(v) for v in pixdim])


class CAMSaver(SliceScoresHandler):
    """Engine handler: CAM and Grad-CAM of every slice called cancer, on CT and PET, and on the CT grid.

    When the run ends, the slices whose cancer probability is at or above ``threshold`` are explained
    (most probable first, at most ``max_slices``). Written under ``output_dir``:

    - ``<patient>_s<slice>_cam.png``: CT and PET side by side with CAM (and Grad-CAM) on top, the lesion
      outlined where a mask is known;
    - ``<patient>_cam.nii.gz``: per study, the CAM of its explained slices on the CT's own voxel grid
      (zero on the other slices), so it overlays the CT in any viewer;
    - ``cams.csv``: per explained slice its probability, label, CAM and Grad-CAM peaks (pixel of the
      slice grid), whether each peak lies inside the lesion, its distance to the lesion (mm), and the
      captum check;
    - ``cam_summary.json``: counts and the pointing game: the share of true-positive slices (label 1,
      called cancer) whose CAM (and Grad-CAM) peak lies inside the lesion mask, strictly and within
      ``tolerance_mm`` of it (the pointing game's usual tolerance, 15 pixels of a 224-pixel picture, is
      about one cell of the last feature map; here in mm); and the largest difference between MONAI's
      and captum's Grad-CAM.

    Args:
        network: the classifier the engine runs.
        dataset: the ``PETCTSliceDataset`` the engine iterates.
        backbone: its backbone name (target layer and linear head).
        output_dir: where the files go.
        threshold: cancer probability at or above which a slice is explained.
        max_slices: explain at most this many; None: all.
        gradcam: also compute Grad-CAM.
        captum_check: cross-check Grad-CAM with captum's ``LayerGradCam``.
        batch_size: slices per explanation pass.
        tolerance_mm: distance from the lesion within which a peak still counts as a hit.

    Examples:
        >>> CAMSaver(net, test_dataset, "ressenet", "eval/cam").attach(evaluator)  # doctest: +SKIP
    """

    def __init__(
        self,
        network: nn.Module,
        dataset: Any,
        backbone: str,
        output_dir: str | os.PathLike,
        threshold: float = 0.5,
        max_slices: int | None = None,
        gradcam: bool = True,
        captum_check: bool = True,
        batch_size: int = 16,
        tolerance_mm: float = 10.0,
    ) -> None:
        super().__init__()
        self.network = network
        self.dataset = dataset
        self.backbone = backbone
        self.output_dir = Path(output_dir)
        self.threshold = float(threshold)
        self.max_slices = max_slices
        self.gradcam = bool(gradcam)
        self.captum_check = bool(captum_check)
        self.batch_size = int(batch_size)
        self.tolerance_mm = float(tolerance_mm)
        self.summary: dict[str, Any] = {}

    def scores_complete(self, scores: dict[int, float]) -> None:
        self.explain(scores)

    def _maps(self, indices: list[int], device: torch.device) -> dict[str, np.ndarray]:
        from lungcad_transforms.visualize.slice_cam import captum_slice_gradcam, slice_cams

        out: dict[str, list[np.ndarray]] = {"CAM": [], "Grad-CAM": [], "captum": []}
        for start in range(0, len(indices), self.batch_size):
            chunk = indices[start : start + self.batch_size]
            x = torch.stack([self.dataset.slice_image(i) for i in chunk]).to(device)
            out["CAM"].append(slice_cams(self.network, x, self.backbone, "cam").cpu().numpy()[:, 0])
            if self.gradcam:
                out["Grad-CAM"].append(
                    slice_cams(self.network, x, self.backbone, "gradcam").cpu().numpy()[:, 0]
                )
                if self.captum_check:
                    out["captum"].append(
                        captum_slice_gradcam(self.network, x, self.backbone).cpu().numpy()[:, 0]
                    )
        return {k: np.concatenate(v) for k, v in out.items() if v}

    def explain(self, scores: Mapping[int, float]) -> dict[str, Any]:
        """Explain the slices of ``scores`` (dataset index -> cancer probability) at or above the threshold."""
        from lungcad_transforms.data.csv_table import write_table
        from lungcad_transforms.visualize.gradcam import unwrap_network
        from lungcad_transforms.visualize.slice_cam import heatmap_peak, save_petct_cam_png

        chosen = sorted((i for i, p in scores.items() if p >= self.threshold), key=lambda i: -scores[i])
        if self.max_slices is not None:
            chosen = chosen[: int(self.max_slices)]
        net = unwrap_network(self.network)
        device = next(net.parameters()).device
        self.output_dir.mkdir(parents=True, exist_ok=True)
        maps = self._maps(chosen, device) if chosen else {}
        rows: list[dict[str, Any]] = []
        per_study: dict[int, list[tuple[int, np.ndarray]]] = {}
        for n, index in enumerate(chosen):
            record = self.dataset.records[index]
            image = self.dataset.slice_image(index).cpu().numpy()
            lesion = self.dataset.slice_mask(index)
            lesion = None if lesion is None else lesion.cpu().numpy()
            heat = {k: maps[k][n] for k in ("CAM", "Grad-CAM") if k in maps}
            stem = f"{record['patient']}_s{record['slice']:03d}"
            pixdim = np.abs(np.diag(self.dataset.studies[record["study_index"]]["geometry"]["slice_affine"]))[
                :2
            ]
            png = save_petct_cam_png(
                self.output_dir / f"{stem}_cam.png", image[0], image[1], heat, lesion,
                title=f"{record['patient']} slice {record['slice']}: p(cancer) = {scores[index]:.3f}", pixdim=pixdim,
            )  # fmt: skip
            row: dict[str, Any] = {"patient": record["patient"], "study": record["study"], "slice": record["slice"],
                                   "probability": scores[index], "label": record["label"], "png": png.name}  # fmt: skip
            for key, name in (("CAM", "cam"), ("Grad-CAM", "gradcam")):
                if key not in heat:
                    continue
                peak = heatmap_peak(heat[key])
                row[f"{name}_peak_i"], row[f"{name}_peak_j"] = peak if peak is not None else (None, None)
                if lesion is not None and lesion.any():
                    row[f"{name}_peak_in_lesion"] = int(peak is not None and bool(lesion[peak] > 0))
                    if peak is not None:
                        row[f"{name}_peak_mm_from_lesion"] = float(_distance_mm(lesion, pixdim)[peak])
            if "captum" in maps:
                row["captum_max_abs_diff"] = float(np.abs(maps["captum"][n] - maps["Grad-CAM"][n]).max())
            rows.append(row)
            per_study.setdefault(record["study_index"], []).append((record["slice"], maps["CAM"][n]))
        columns = ["patient", "study", "slice", "probability", "label", "png", "cam_peak_i", "cam_peak_j",
                   "cam_peak_in_lesion", "cam_peak_mm_from_lesion", "gradcam_peak_i", "gradcam_peak_j",
                   "gradcam_peak_in_lesion", "gradcam_peak_mm_from_lesion", "captum_max_abs_diff"]  # fmt: skip
        write_table(rows, self.output_dir / "cams.csv", columns, required=["patient", "slice", "probability"],
                    numeric=["probability", "captum_max_abs_diff", "cam_peak_mm_from_lesion", "gradcam_peak_mm_from_lesion"])  # fmt: skip
        niftis = [self._write_heatmap(s, slices) for s, slices in per_study.items()]
        true_pos = [r for r in rows if r["label"] == 1]
        summary: dict[str, Any] = {"explained": len(rows), "threshold": self.threshold, "backbone": self.backbone,
                                   "heatmaps": [p.name for p in niftis], "true_positive_slices": len(true_pos)}  # fmt: skip
        for name in ("cam", "gradcam"):
            hits = [r[f"{name}_peak_in_lesion"] for r in true_pos if f"{name}_peak_in_lesion" in r]
            summary[f"pointing_game_{name}"] = (sum(hits) / len(hits)) if hits else None
            near = [r.get(f"{name}_peak_mm_from_lesion", np.inf) <= self.tolerance_mm for r in true_pos
                    if f"{name}_peak_in_lesion" in r]  # fmt: skip
            summary[f"pointing_game_{name}_within_tolerance"] = (sum(near) / len(near)) if near else None
        summary["tolerance_mm"] = self.tolerance_mm
        if "captum" in maps:
            summary["captum_max_abs_diff"] = max(r["captum_max_abs_diff"] for r in rows)
        with atomic_file(self.output_dir / "cam_summary.json") as tmp:
            tmp.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        logger.info("CAM: %s", {k: v for k, v in summary.items() if k != "heatmaps"})
        self.summary = summary
        return summary

    def _write_heatmap(self, study_index: int, slices: list[tuple[int, np.ndarray]]) -> Path:
        from monai.data import MetaTensor
        from monai.transforms import SpatialResample

        from lungcad_transforms.data.image_writer import write_image

        study = self.dataset.studies[study_index]
        geometry = study["geometry"]
        grid = self.dataset.slice_image(next(i for i, r in enumerate(self.dataset.records)
                                             if r["study_index"] == study_index)).shape[-2:]  # fmt: skip
        depth = sum(1 for r in self.dataset.records if r["study_index"] == study_index)
        volume = np.zeros((*grid, depth), dtype=np.float32)
        for k, heat in slices:
            volume[..., k] = heat
        on_slices = MetaTensor(
            torch.as_tensor(volume[None]), affine=torch.as_tensor(geometry["slice_affine"])
        )
        on_ct = SpatialResample(mode="bilinear", padding_mode="zeros")(
            on_slices, dst_affine=torch.as_tensor(geometry["ct_affine"]), spatial_size=geometry["ct_shape"]
        )
        return write_image(on_ct, self.output_dir / f"{study['patient']}_cam.nii.gz", like=geometry["ct_meta"],
                           dtype=np.float32, mode="bilinear")  # fmt: skip
