"""3-D Grad-CAM for the false-positive-reduction networks, placed back in the scan.

For a candidate the network calls a nodule, Grad-CAM (Selvaraju et al. 2017) weights the feature
maps of the last convolution block by the mean gradient of the nodule logit and keeps the positive
part. MONAI's ``GradCAM`` computes it and upsamples it to the patch grid; this module then

- normalises it to [0, 1] per candidate (MONAI's default post-processing maps the maximum to 0, the
  reverse of what a heatmap overlay needs, so a max -> 1 normaliser is passed instead);
- resamples it from the patch grid into the scan's voxel grid (MONAI ``SpatialResample`` over the
  patch's bounding box only, so a 512x512x300 scan costs no more than the patch), giving a NIfTI
  with the scan's own RAS affine that overlays the scan in any viewer;
- draws a montage of axial, coronal and sagittal slices through the candidate with the heatmap on
  top (``visualize.save_montage``);
- reports where the heatmap peaks, in LUNA16 world coordinates, and whether the peak lies inside an
  annotated nodule (the LUNA16 hit rule: closer to its centre than its radius).

captum's ``LayerGradCam`` computes the same map independently (:func:`captum_gradcam`); the tests
check the two agree.

Which part of the scan the map covers: the MGI-CNN's last block sees the three scales stacked on one
grid; the map is placed with the finest scale's geometry (the scale the zoom-in stream integrates
last, and the one with the most detail). The small 3-D CNN reads one scale; its map is placed with
that scale's geometry.
"""

from __future__ import annotations

import csv
import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
from monai.data import MetaTensor
from monai.transforms import SpatialResample
from monai.visualize import GradCAM

from lungcad_transforms.outputs import atomic_file
from lungcad_transforms.patches import CandidateScoresHandler

__all__ = [
    "default_target_layer",
    "normalize_heatmaps",
    "CandidateGradCAM",
    "captum_gradcam",
    "heatmap_scale_index",
    "heatmap_to_scan",
    "peak_inside_nodule",
    "GradCAMSaver",
]

logger = logging.getLogger("lungcad.explain")

_TARGET_LAYERS = {"MGICNN": "final_block", "Small3DCNN": "conv3"}


def _unwrap(network: nn.Module) -> nn.Module:
    # DDP / DataParallel keep the real network in .module
    return network.module if hasattr(network, "module") and isinstance(network.module, nn.Module) else network


def default_target_layer(network: nn.Module) -> str:
    """Name of the last convolution block of a lungcad FP-reduction network (the Grad-CAM layer).

    Examples:
        >>> from lungcad_transforms.networks.small3dcnn import Small3DCNN
        >>> default_target_layer(Small3DCNN(patch_size=(20, 20, 12)))
        'conv3'
    """
    name = type(_unwrap(network)).__name__
    if name in _TARGET_LAYERS:
        return _TARGET_LAYERS[name]
    convs = [n for n, m in _unwrap(network).named_modules() if isinstance(m, nn.Conv3d)]
    if not convs:
        raise ValueError(f"{name} has no 3-D convolution to compute Grad-CAM on; give target_layer")
    return convs[-1]


def normalize_heatmaps(maps: torch.Tensor) -> torch.Tensor:
    """Scale each map of a batch (B, 1, ...) to [0, 1], maximum -> 1; an all-zero map stays zero.

    Examples:
        >>> normalize_heatmaps(torch.tensor([[[0.0, 2.0, 4.0]]]))
        tensor([[[0.0000, 0.5000, 1.0000]]])
    """
    flat = maps.reshape(maps.shape[0], -1)
    low = flat.min(dim=1).values.view(-1, *[1] * (maps.ndim - 1))
    span = (flat.max(dim=1).values - flat.min(dim=1).values).view(-1, *[1] * (maps.ndim - 1))
    return torch.where(span > 0, (maps - low) / span.clamp_min(1e-12), torch.zeros_like(maps))


class CandidateGradCAM:
    """3-D Grad-CAM of the nodule logit on the patch grid (MONAI ``GradCAM``), normalised to [0, 1].

    Args:
        network: an FP-reduction network with one output logit (``MGICNN``, ``Small3DCNN``).
        target_layer: the layer to explain; default the network's last convolution block.

    Examples:
        >>> from lungcad_transforms.networks.small3dcnn import Small3DCNN
        >>> cam = CandidateGradCAM(Small3DCNN(patch_size=(20, 20, 12)))
        >>> cam(torch.rand(2, 3, 20, 20, 12)).shape  # three scales in, one heatmap per candidate out
        torch.Size([2, 1, 20, 20, 12])
    """

    def __init__(self, network: nn.Module, target_layer: str | None = None) -> None:
        self.network = _unwrap(network)
        self.target_layer = target_layer or default_target_layer(self.network)
        self.cam = GradCAM(
            nn_module=self.network, target_layers=self.target_layer, postprocessing=normalize_heatmaps
        )

    def __call__(self, patches: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad():
            # class 0 is the only output: the nodule logit
            maps = self.cam(patches, class_idx=0)
        return maps.detach()


def captum_gradcam(
    network: nn.Module, patches: torch.Tensor, target_layer: str | None = None
) -> torch.Tensor:
    """The same Grad-CAM through captum's ``LayerGradCam``, upsampled and normalised like :class:`CandidateGradCAM`.

    Used as an independent cross-check of the MONAI path.
    """
    from captum.attr import LayerAttribution, LayerGradCam

    net = _unwrap(network)
    layer_name = target_layer or default_target_layer(net)
    layer = dict(net.named_modules())[layer_name]
    was_training = net.training
    net.eval()
    try:
        with torch.enable_grad():
            attribution = LayerGradCam(net, layer).attribute(patches, target=0, relu_attributions=True)
    finally:
        net.train(was_training)
    upsampled = LayerAttribution.interpolate(
        attribution, tuple(patches.shape[2:]), interpolate_mode="trilinear"
    )
    return normalize_heatmaps(upsampled.detach())


def heatmap_scale_index(network: nn.Module) -> int:
    """Which scale's geometry a network's heatmap is placed with (see the module docstring)."""
    scale = getattr(_unwrap(network), "input_scale", None)
    return int(scale) if scale is not None else 0


def heatmap_to_scan(
    heatmap: np.ndarray | torch.Tensor,
    patch_affine: np.ndarray,
    scan_affine: np.ndarray,
    scan_shape: Sequence[int],
) -> tuple[np.ndarray, tuple[slice, slice, slice]]:
    """Resample a patch-grid heatmap into the scan's voxel grid, over the patch's bounding box.

    Args:
        heatmap: (X', Y', Z') or (1, X', Y', Z') on the patch grid.
        patch_affine: the patch's voxel -> RAS affine.
        scan_affine: the scan's voxel -> RAS affine.
        scan_shape: the scan's spatial shape.

    Returns:
        ``(values, box)``: the heatmap on the scan grid inside ``box`` (a tuple of slices into the scan;
        zero outside the patch), ready for ``volume[box] = values``.

    Examples:
        >>> patch_affine = np.diag([1.25, 1.25, 1.25, 1.0]); patch_affine[:3, 3] = 10.0
        >>> values, box = heatmap_to_scan(np.ones((16, 16, 16)), patch_affine, np.eye(4), (64, 64, 64))
        >>> values.shape, box[0]
        ((22, 22, 22), slice(9, 31, None))
    """
    heat = torch.as_tensor(
        np.asarray(heatmap.detach().cpu() if isinstance(heatmap, torch.Tensor) else heatmap),
        dtype=torch.float32,
    )
    heat = heat[None] if heat.ndim == 3 else heat
    patch_affine = np.asarray(patch_affine, dtype=np.float64)
    scan_affine = np.asarray(scan_affine, dtype=np.float64)
    size = np.asarray(heat.shape[1:], dtype=np.float64)
    corners = np.array(np.meshgrid(*[[-0.5, s - 0.5] for s in size], indexing="ij")).reshape(3, -1).T
    to_scan = np.linalg.solve(scan_affine, patch_affine)
    in_scan = corners @ to_scan[:3, :3].T + to_scan[:3, 3]
    lo = np.maximum(np.floor(in_scan.min(axis=0)).astype(int), 0)
    hi = np.minimum(np.ceil(in_scan.max(axis=0)).astype(int) + 1, np.asarray(scan_shape, dtype=int))
    if np.any(hi <= lo):
        return np.zeros((0, 0, 0), np.float32), (slice(0, 0), slice(0, 0), slice(0, 0))
    box_affine = scan_affine.copy()
    box_affine[:3, 3] = scan_affine[:3, :3] @ lo + scan_affine[:3, 3]
    src = MetaTensor(heat, affine=torch.as_tensor(patch_affine))
    resampled = SpatialResample(mode="bilinear", padding_mode="zeros", dtype=torch.float32)(
        src, dst_affine=torch.as_tensor(box_affine), spatial_size=tuple(int(v) for v in hi - lo)
    )
    values = np.asarray(resampled.detach().cpu())[0].astype(np.float32)
    return values, tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))


def peak_inside_nodule(
    peak_lps: Sequence[float], seriesuid: str, annotations: Sequence[Mapping[str, Any]]
) -> bool:
    """Whether a point lies inside an annotated nodule of its scan (closer to its centre than its radius).

    Examples:
        >>> nodule = {"seriesuid": "1.2.3", "coordX": 10.0, "coordY": -20.0, "coordZ": 30.0, "diameter_mm": 8.0}
        >>> peak_inside_nodule((12.0, -20.0, 31.0), "1.2.3", [nodule]), peak_inside_nodule((15.0, -20.0, 30.0), "1.2.3", [nodule])
        (True, False)
    """
    for row in annotations:
        if str(row["seriesuid"]) != seriesuid:
            continue
        d2 = sum(
            (float(p) - float(row[c])) ** 2
            for p, c in zip(peak_lps, ("coordX", "coordY", "coordZ"), strict=True)
        )
        if d2 < (float(row["diameter_mm"]) / 2.0) ** 2:
            return True
    return False


class GradCAMSaver(CandidateScoresHandler):
    """Engine handler: Grad-CAM heatmaps (NIfTI in scan space) and montages (PNG) of the candidates called nodules.

    During the run it records every candidate's probability; at the end it takes those at or above
    ``threshold``, computes their Grad-CAM from the dataset's cached patches, loads each of their scans
    once, and writes under ``output_dir``:

    - ``<seriesuid>_<n>_gradcam.nii.gz``: the heatmap (float32, 0..1) on the scan's voxel grid with the
      scan's RAS affine, zero outside the candidate's patch;
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
        from lungcad_transforms.coords import read_annotations, voxel_to_world, world_to_voxel
        from lungcad_transforms.io import load_image
        from lungcad_transforms.pipeline import save_nifti
        from lungcad_transforms.visualize import save_montage

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
            hu = np.asarray(image[0].detach().cpu())
            spacing = np.linalg.norm(scan_affine[:3, :3], axis=0)
            patches = torch.as_tensor(self.dataset.patches[indices].astype(np.float32), device=device)
            maps = cam(patches).cpu().numpy()[:, 0]
            for n, (index, heat) in enumerate(zip(indices, maps, strict=True)):
                record = records[index]
                values, box = heatmap_to_scan(heat, self.dataset.affines[index, scale], scan_affine, hu.shape)
                volume = np.zeros(hu.shape, np.float32)
                volume[box] = values
                stem = f"{uid}_{n}_gradcam"
                nifti = save_nifti(volume, scan_affine, self.output_dir / f"{stem}.nii.gz", dtype=np.float32)
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
        with atomic_file(self.output_dir / "gradcam.csv") as tmp:
            with open(tmp, "w", newline="", encoding="utf-8") as fh:
                columns = [
                    "seriesuid",
                    "coordX",
                    "coordY",
                    "coordZ",
                    "probability",
                    "label",
                    "peakX",
                    "peakY",
                    "peakZ",
                    "heatmap",
                    "montage",
                ] + (["candidate_on_nodule", "peak_inside_nodule"] if annotations is not None else [])
                writer = csv.DictWriter(fh, fieldnames=columns, lineterminator="\n")
                writer.writeheader()
                writer.writerows(lines)
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
