"""The MR/PET classifier's samples: every axial slice of every patient (2-D, as the study) or whole volumes
(3-D), each labelled tumour / no tumour from the patient's tumour mask."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

logger = logging.getLogger(__name__)

__all__ = ["UNKNOWN_LABEL", "MRPETSliceDataset", "patient_scores"]

#: label of a sample whose patient has no tumour mask (inference on new data)
UNKNOWN_LABEL = -1


class MRPETSliceDataset(Dataset):
    """Map-style dataset of the slices (or volumes) of MR/PET patients.

    Each patient is loaded once (``volume_transform``, e.g. :class:`~lungcad_transforms.apps.mrpet.MRPETVolumed`)
    and kept in memory; MONAI's ``GridPatchDataset`` yields slices too, but as an iterable dataset that a
    ``DistributedSampler`` cannot split and that carries no per-slice label, hence this one. A slice is
    labelled 1 when it crosses the tumour mask, 0 when not, :data:`UNKNOWN_LABEL` without a mask; a volume
    is labelled 1 when the mask is not empty.

    Items: ``{"image": (C, H, W) or (C, H, W, D) float tensor, "label": int64, "index": i, "patient": id,
    "slice": k (-1 for volumes)}``, then ``transform`` (augmentation).

    Args:
        data: patient entries (``{"mr", "pet", "label", "patient", ...}``).
        volume_transform: entry -> dict with ``"image"`` (C, H, W, D), ``"label"`` (mask or None).
        transform: applied to each item (dictionary transforms on ``"image"``).
        spatial_dims: 2 (slices) or 3 (volumes).

    Attributes:
        patients: per patient: ``{"patient", "registration", "display", "affine", "pet_units", "kind"}``.
    """

    def __init__(
        self,
        data: Sequence[Mapping[str, Any]],
        volume_transform: Callable[[Mapping[str, Any]], Mapping[str, Any]],
        transform: Callable | None = None,
        spatial_dims: int = 2,
    ) -> None:
        if spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}")
        self.transform = transform
        self.spatial_dims = spatial_dims
        self.items: list[dict[str, Any]] = []
        self.patients: list[dict[str, Any]] = []
        for entry in data:
            vol = volume_transform(dict(entry))
            image = torch.as_tensor(vol["image"]).float()
            mask = vol.get("label")
            patient = str(entry.get("patient", len(self.patients)))
            self.patients.append({"patient": patient, "registration": vol.get("registration"),
                                  "display": vol.get("display"), "affine": vol.get("affine"),
                                  "pet_units": vol.get("pet_units", ""), "kind": entry.get("kind", "")})  # fmt: skip
            if spatial_dims == 3:
                label = UNKNOWN_LABEL if mask is None else int(bool(torch.as_tensor(mask).any()))
                self._add(image, label, patient, -1)
                continue
            per_slice = None if mask is None else torch.as_tensor(mask).flatten(0, -2).any(dim=0)
            for k in range(image.shape[-1]):
                self._add(
                    image[..., k], UNKNOWN_LABEL if per_slice is None else int(per_slice[k]), patient, k
                )
        logger.info("%d patients, %d samples (%d tumour)", len(self.patients), len(self.items),
                    sum(item["label"] == 1 for item in self.items))  # fmt: skip

    def _add(self, image: torch.Tensor, label: int, patient: str, k: int) -> None:
        self.items.append({"image": image.contiguous(), "label": torch.tensor(label, dtype=torch.int64),
                           "index": len(self.items), "patient": patient, "slice": k})  # fmt: skip

    @property
    def labels(self) -> np.ndarray:
        """The label of every sample, in order."""
        return np.array([int(item["label"]) for item in self.items], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = dict(self.items[index])
        return self.transform(item) if self.transform is not None else item


def patient_scores(
    patient_ids: Sequence[str], probs: Sequence[float], labels: Sequence[int]
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """One score per patient: the highest slice probability (a patient has a tumour when any slice shows
    one), labelled positive when any slice is: ``metrics.aggregate_by_patient`` with its ``max`` rule, the
    one that fits a tumour in a few of a patient's slices.

    Examples:
        >>> patient_scores(["a", "a", "b"], [0.1, 0.9, 0.2], [0, 1, 0])
        (['a', 'b'], array([0.9, 0.2]), array([1, 0]))
    """
    from lungcad_transforms.metrics.classification import aggregate_by_patient

    return aggregate_by_patient(patient_ids, probs, labels, rule="max")
