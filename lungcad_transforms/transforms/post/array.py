"""Post-processing array transforms."""

from __future__ import annotations

from typing import Any

from monai.config import NdarrayOrTensor
from monai.transforms import Transform
from monai.utils import TransformBackends

from lungcad_transforms.transforms.post.functional import extract_candidates

__all__ = ["ExtractCandidates"]


class ExtractCandidates(Transform):
    """Array transform: probability map -> list of candidate rows (see :func:`extract_candidates`).

    Args:
        threshold: probability at which a voxel joins a candidate.
        min_volume_mm3: smaller components are dropped.
        score: ``"max"`` or ``"mean"`` probability in the component.

    Examples:
        >>> import torch
        >>> from monai.data import MetaTensor
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
