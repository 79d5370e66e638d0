"""From the bundles' outputs to the nodules of a study: instance labels, Grad-CAM volume, measurements."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from lungcad_transforms.apps.cad.measure import REFINE_SHELL_MM, lung_side, measure_nodule, refine_nodule_mask

__all__ = ["gradcam_volume", "label_nodules"]


def gradcam_volume(
    scoring: Any, kept: Sequence[int], scan_affine: np.ndarray, shape: Sequence[int]
) -> np.ndarray:
    """One Grad-CAM heatmap volume (0..1, the maximum over the kept nodules) on the loaded scan's grid.

    The FP bundle's own Grad-CAM path (``GradCAMSaver``): ``CandidateGradCAM`` of the bundle's network on
    the dataset's cached patches, placed in the scan with ``heatmap_to_scan`` at the network's scale.

    Args:
        scoring: the :class:`~lungcad_transforms.apps.cad.bundles.ScoringResult` of the study.
        kept: positions in ``scoring.rows`` of the nodules to explain.
        scan_affine: the loaded scan's voxel -> RAS affine.
        shape: the loaded scan's spatial shape.
    """
    from lungcad_transforms.visualize.gradcam import (
        CandidateGradCAM,
        _unwrap,
        heatmap_scale_index,
        heatmap_to_scan,
    )

    volume = np.zeros(tuple(int(s) for s in shape), np.float32)
    if not kept:
        return volume
    net = _unwrap(scoring.network)
    device = next(net.parameters()).device
    indices = [scoring.indices[k] for k in kept]
    patches = torch.as_tensor(scoring.dataset.patches[indices].astype(np.float32), device=device)
    maps = CandidateGradCAM(net, scoring.target_layer)(patches).cpu().numpy()[:, 0]
    scale = heatmap_scale_index(net)
    for index, heat in zip(indices, maps, strict=True):
        values, box = heatmap_to_scan(heat, scoring.dataset.affines[index, scale], scan_affine, volume.shape)
        if values.size:
            np.maximum(volume[box], values, out=volume[box])
    return volume


def _component_of(labels: np.ndarray, centre: np.ndarray, radius_vox: np.ndarray, taken: set[int]) -> int:
    """The mask component at the candidate centre, else the largest one within its radius (0: none)."""
    index = tuple(np.clip(np.floor(centre + 0.5).astype(int), 0, np.asarray(labels.shape) - 1))
    if labels[index] and int(labels[index]) not in taken:
        return int(labels[index])
    lo = np.maximum(np.floor(centre - radius_vox).astype(int), 0)
    hi = np.minimum(np.ceil(centre + radius_vox).astype(int) + 1, labels.shape)
    box = labels[tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))]
    found, counts = np.unique(box[box > 0], return_counts=True)
    free = [(c, int(f)) for f, c in zip(found, counts, strict=True) if int(f) not in taken]
    return max(free)[1] if free else 0


def label_nodules(
    rows: Sequence[dict[str, Any]],
    seg_mask: np.ndarray,
    hu: np.ndarray,
    lungs: np.ndarray,
    affine: np.ndarray,
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Give each nodule its voxels, seeded by the segmentation mask, and measure it.

    A nodule's voxels are its mask component refined to its own partial-volume edge
    (:func:`~lungcad_transforms.apps.cad.measure.refine_nodule_mask`): what the label map, the DICOM SEG
    segment and the reported diameters and volume all show.

    Args:
        rows: the kept nodules (LUNA16 world centres), most probable first.
        seg_mask: the segmentation bundle's nodule mask on the loaded RAS grid (X, Y, Z) bool.
        hu: the loaded CT (X, Y, Z) in HU.
        lungs: the lung mask (X, Y, Z) bool.
        affine: voxel -> RAS affine of the loaded grid.

    Returns:
        ``(labels, rows)``: uint16 label map (label ``row["label"]`` holds that row's voxels) and the rows with their
        measurements added; labels are numbered 1..N over the segmented nodules in row order. A nodule
        without a mask component (its probability never reached the mask threshold) gets label 0 and
        no size.
    """
    import cc3d
    from monai.data.utils import affine_to_spacing
    from scipy import ndimage

    from lungcad_transforms.data.coords import world_to_voxel

    spacing = affine_to_spacing(affine, r=3).astype(np.float64)
    components = cc3d.connected_components(seg_mask, connectivity=26)
    # each nodule is refined and measured in its own bounding box: on a 512 x 512 x 300 scan the
    # whole-volume comparisons, HU indexing and erosions cost about 0.3 s per nodule, in its box very little
    boxes = ndimage.find_objects(components)
    margin = np.ceil(REFINE_SHELL_MM[1] / spacing).astype(int) + 1  # room for the parenchyma shell
    labels = np.zeros(seg_mask.shape, np.uint16)
    taken: set[int] = set()
    out = []
    n = 0
    for row in rows:
        centre = world_to_voxel([[row["coordX"], row["coordY"], row["coordZ"]]], affine)[0]
        radius = max(float(row.get("diameter_mm") or 0.0), 4.0) / 2.0 / spacing
        component = _component_of(components, centre, radius, taken)
        # the candidate's own volume is that of its low-threshold region: only the mask's is reported
        measured = {k: v for k, v in row.items() if k != "volume_mm3"}
        voxels, box = None, None
        if component:
            taken.add(component)
            box = tuple(
                slice(max(b.start - m, 0), min(b.stop + m, size))
                for b, m, size in zip(boxes[component - 1], margin, labels.shape, strict=True)
            )
            voxels = refine_nodule_mask(hu[box], components[box] == component, spacing, lungs[box])
            voxels &= labels[box] == 0  # a voxel already given to a more probable nodule stays there
        if voxels is not None and voxels.any():
            n += 1  # segment numbers are consecutive: DICOM SEG numbers its segments 1..N
            labels[box][voxels] = n
            measured["label"] = n
            measurement = measure_nodule(hu[box], voxels, spacing, lungs, centre)
            measurement.axial_slice += box[2].start  # the slice of the whole scan, not of the box
            measured.update(measurement.as_row())
        else:
            measured["label"] = 0
            measured["side"] = lung_side(centre, lungs)
        out.append(measured)
    return labels, out
