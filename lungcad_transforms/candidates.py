"""Nodule candidates from a segmentation probability map, in LUNA16 results form.

A candidate is a connected component (26-connected, ``cc3d``) of the voxels whose nodule probability
reaches a threshold. Each one is reported with:

- ``coordX, coordY, coordZ``: its probability-weighted centroid, in LUNA16 world coordinates (ITK
  physical space, LPS, mm) through :func:`lungcad_transforms.coords.voxel_to_world`; weighting by the
  probability pulls the centre towards the core of the nodule rather than a ragged threshold boundary;
- ``probability``: by default the maximum probability in the component (``score="max"``): the network's
  most confident voxel, which keeps a small nodule seen with certainty above a large, uncertain blob;
  ``score="mean"`` gives the mean over the component instead;
- ``diameter_mm``: the diameter of the sphere with the component's volume;
- ``volume_mm3``: voxel count times voxel volume.

Components smaller than ``min_volume_mm3`` are dropped (LUNA16 counts nodules of 3 mm and more; a 3 mm
sphere is 14 mm^3).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection, NdarrayOrTensor
from monai.data import MetaTensor
from monai.transforms import MapTransform, Transform
from monai.utils import TransformBackends

from lungcad_transforms.coords import voxel_to_world

__all__ = [
    "CANDIDATE_COLUMNS",
    "extract_candidates",
    "ExtractCandidates",
    "ExtractCandidatesd",
    "ExtractCandidatesD",
    "ExtractCandidatesDict",
]

CANDIDATE_COLUMNS = ("seriesuid", "coordX", "coordY", "coordZ", "probability", "diameter_mm", "volume_mm3")
"""Columns of the candidate CSV: LUNA16 results form, then size."""


def _numpy(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().float().numpy()
    return np.asarray(x, dtype=np.float32)


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
        one dict per candidate, most probable first, with keys :data:`CANDIDATE_COLUMNS`.

    Raises:
        ValueError: not a single-channel 3-D map, no affine, or an unknown ``score``.

    Examples:
        Two blobs in a 1 mm grid whose voxel (0, 0, 0) sits at RAS (0, 0, 0):

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
    affine_np = np.asarray(_numpy(affine), dtype=np.float64)
    values = _numpy(prob)
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


class ExtractCandidates(Transform):
    """Array transform: probability map -> list of candidate rows (see :func:`extract_candidates`).

    Args:
        threshold: probability at which a voxel joins a candidate.
        min_volume_mm3: smaller components are dropped.
        score: ``"max"`` or ``"mean"`` probability in the component.

    Examples:
        >>> prob = MetaTensor(torch.zeros(1, 16, 16, 16), affine=torch.diag(torch.tensor([0.7, 0.7, 1.25, 1.0])))
        >>> prob[0, 5:11, 5:11, 4:8] = 0.95   # a 4.2 x 4.2 x 5 mm nodule
        >>> [round(r["diameter_mm"], 1) for r in ExtractCandidates(min_volume_mm3=14.0)(prob, seriesuid="1.2")]
        [5.5]
    """

    backend = [TransformBackends.NUMPY, TransformBackends.TORCH]

    def __init__(self, threshold: float = 0.5, min_volume_mm3: float = 10.0, score: str = "max") -> None:
        self.threshold = threshold
        self.min_volume_mm3 = min_volume_mm3
        self.score = score

    def __call__(self, prob: NdarrayOrTensor, seriesuid: str = "") -> list[dict[str, Any]]:
        return extract_candidates(prob, self.threshold, seriesuid, self.min_volume_mm3, score=self.score)


class ExtractCandidatesd(MapTransform):
    """Dictionary-based :class:`ExtractCandidates`: adds ``output_key`` with the candidate rows.

    Args:
        keys: the probability map's key (one key).
        threshold, min_volume_mm3, score: as :class:`ExtractCandidates`.
        seriesuid_key: the data key holding the scan's id; when absent, ``meta["seriesuid"]`` or the
            file name the map came from.
        output_key: where the rows go.

    Examples:
        >>> prob = MetaTensor(torch.zeros(1, 16, 16, 16), affine=torch.eye(4))
        >>> prob[0, 4:9, 4:9, 4:9] = 0.8
        >>> out = ExtractCandidatesd("prob")({"prob": prob, "seriesuid": "1.3.6.1.4.1.14519"})
        >>> out["candidates"][0]["seriesuid"], out["candidates"][0]["volume_mm3"]
        ('1.3.6.1.4.1.14519', 125.0)
    """

    backend = ExtractCandidates.backend

    def __init__(
        self,
        keys: KeysCollection,
        threshold: float = 0.5,
        min_volume_mm3: float = 10.0,
        score: str = "max",
        seriesuid_key: str = "seriesuid",
        output_key: str = "candidates",
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.extractor = ExtractCandidates(threshold, min_volume_mm3, score)
        self.seriesuid_key = seriesuid_key
        self.output_key = output_key

    def _seriesuid(self, data: Mapping[Hashable, Any], prob: Any) -> str:
        uid = data.get(self.seriesuid_key)
        if uid:
            return str(uid)
        meta: Mapping[str, Any] = prob.meta if isinstance(prob, MetaTensor) else {}
        return str(meta.get("seriesuid") or meta.get("filename_or_obj") or "")

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        rows: list[dict[str, Any]] = []
        for key in self.key_iterator(d):
            rows.extend(self.extractor(d[key], seriesuid=self._seriesuid(d, d[key])))
        d[self.output_key] = rows
        return d


ExtractCandidatesD = ExtractCandidatesDict = ExtractCandidatesd
