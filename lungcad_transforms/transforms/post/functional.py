"""Candidate extraction: connected components of a probability map, in LUNA16 form."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from monai.config import NdarrayOrTensor
from monai.data import MetaTensor
from monai.utils import convert_to_numpy

from lungcad_transforms.data.coords import voxel_to_world

__all__ = ["extract_candidates"]


def extract_candidates(
    prob: NdarrayOrTensor,
    threshold: float = 0.5,
    seriesuid: str = "",
    min_volume_mm3: float = 10.0,
    affine: Any = None,
    score: str = "max",
    connectivity: int = 26,
) -> list[dict[str, Any]]:
    """Connected components of a thresholded nodule-probability map, as LUNA16 result rows.

    Args:
        prob: nodule probability, ``MetaTensor`` ``(1, X, Y, Z)`` or ``(X, Y, Z)`` whose ``affine`` maps voxels
            to RAS mm (any loaded and resampled image in this project has one); a plain array needs ``affine``.
        threshold: voxels with probability ``>= threshold`` belong to candidates.
        seriesuid: written into every row.
        min_volume_mm3: smaller components are dropped.
        affine: voxel -> RAS affine, when ``prob`` carries none (overrides ``prob.affine`` when given).
        score: ``"max"`` or ``"mean"`` probability in the component (see the module docstring).
        connectivity: 6, 18 or 26 (cc3d).

    Returns:
        one dict per candidate, most probable first, with the keys of
        :data:`lungcad_transforms.data.tables.SEGMENTATION_CANDIDATE_COLUMNS`.

    Raises:
        ValueError: not a single-channel 3-D map, no affine, or an unknown ``score``.

    Examples:
        Two blobs in a 1 mm grid whose voxel (0, 0, 0) sits at RAS (0, 0, 0):

        >>> import torch
        >>> from monai.data import MetaTensor
        >>> prob = MetaTensor(torch.zeros(1, 32, 32, 32), affine=torch.eye(4))
        >>> prob[0, 4:10, 4:10, 4:10] = 0.9      # a 6 mm cube
        >>> prob[0, 20:24, 20:24, 20:24] = 0.7   # a 4 mm cube
        >>> rows = extract_candidates(prob, seriesuid="1.2.3")
        >>> [(r["coordX"], r["coordY"], r["coordZ"], round(r["probability"], 2), r["volume_mm3"]) for r in rows]
        [(-6.5, -6.5, 6.5, 0.9, 216.0), (-21.5, -21.5, 21.5, 0.7, 64.0)]
    """
    if score not in ("max", "mean"):
        raise ValueError(f"score must be 'max' or 'mean', got {score!r}")
    import cc3d

    if affine is None:
        if not isinstance(prob, MetaTensor):
            raise ValueError("prob has no affine: pass a MetaTensor or affine=")
        affine = prob.affine
    affine_np = convert_to_numpy(affine, dtype=np.float64)
    values = convert_to_numpy(prob, dtype=np.float32)
    if values.ndim == 4:
        if values.shape[0] != 1:
            raise ValueError(f"expected one probability channel, got shape {values.shape}")
        values = values[0]
    if values.ndim != 3:
        raise ValueError(f"expected a 3-D probability map (1, X, Y, Z), got shape {values.shape}")
    labels, n = cc3d.connected_components(values >= threshold, connectivity=connectivity, return_N=True)
    if n == 0:
        return []
    voxel_mm3 = float(abs(np.linalg.det(affine_np[:3, :3])))
    stats = cc3d.statistics(labels, no_slice_conversion=False)
    counts = np.asarray(stats["voxel_counts"][1:], dtype=np.int64)
    keep = np.flatnonzero(counts * voxel_mm3 >= min_volume_mm3) + 1
    if not keep.size:
        return []
    # weighted centroid and score inside each component's bounding box: a few small boxes instead of
    # scipy.ndimage passes over the whole (up to 512 x 512 x 300) map
    centres = np.empty((len(keep), 3), dtype=np.float64)
    scores = np.empty(len(keep), dtype=np.float64)
    volumes = counts[keep - 1] * voxel_mm3
    for row, label in enumerate(keep):
        box = stats["bounding_boxes"][label]
        inside = labels[box] == label
        weights = values[box][inside].astype(np.float64)
        offsets = np.array([s.start for s in box], dtype=np.float64)
        centres[row] = offsets + (np.argwhere(inside) * weights[:, None]).sum(axis=0) / weights.sum()
        scores[row] = weights.max() if score == "max" else weights.mean()
    world = voxel_to_world(centres, affine_np)
    rows = [
        {
            "seriesuid": seriesuid,
            "coordX": float(xyz[0]),
            "coordY": float(xyz[1]),
            "coordZ": float(xyz[2]),
            "probability": float(p),
            "diameter_mm": float((6.0 * v / math.pi) ** (1.0 / 3.0)),
            "volume_mm3": float(v),
        }
        for xyz, p, v in zip(world, scores, volumes, strict=True)
    ]
    rows.sort(key=lambda row: -row["probability"])
    return rows
