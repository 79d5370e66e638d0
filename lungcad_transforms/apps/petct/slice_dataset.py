"""Axial 2-D slices of paired PET/CT studies, with slice labels from the lesion mask, split by patient.

Each study is loaded once (PET onto the CT grid in SUV, the CT windowed, stacked into channels), resampled
in-plane to one pixel size and padded / cropped to one slice size so that every slice of every scanner
batches together; the through-plane axis keeps the CT's own slices. A slice is positive when the lesion
mask covers at least ``min_lesion_pixels`` of it. What each slice came from (patient, study, slice index)
and the geometry needed to put a heatmap back on the CT grid are kept beside the pixels.
"""

from __future__ import annotations

import json
import logging
import os
import random
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from lungcad_transforms.errors import InputError

logger = logging.getLogger(__name__)

__all__ = ["PETCTSliceDataset", "read_petct_datalist", "split_by_patient"]


def read_petct_datalist(path: str | os.PathLike, split: str | None = None) -> list[dict[str, Any]]:
    """The studies of a PET/CT datalist JSON (``{"training": [...], ...}``), paths made absolute.

    Entries hold ``ct`` and ``pet`` (DICOM series folders or image files), optionally ``label`` (the
    lesion mask on the CT grid) and ``patient``; relative paths are taken from the datalist's folder.

    Raises:
        InputError: the file is missing, not JSON, or lacks the split.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "datalist not found")
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise InputError(path, f"is not a readable JSON datalist ({err})") from err
    entries = content if split is None else content.get(split)
    if not isinstance(entries, list):
        raise InputError(path, f"has no list of studies under {split!r}")
    out = []
    for entry in entries:
        if not isinstance(entry, Mapping) or "ct" not in entry or "pet" not in entry:
            raise InputError(path, f"entry {entry!r} needs 'ct' and 'pet'")
        fixed = dict(entry)
        for key in ("ct", "pet", "label"):
            if isinstance(fixed.get(key), str) and not os.path.isabs(fixed[key]):
                fixed[key] = str(path.parent / fixed[key])
        out.append(fixed)
    return out


def split_by_patient(
    entries: Sequence[Mapping[str, Any]], fractions: Sequence[float] = (0.6, 0.2, 0.2), seed: int = 0
) -> list[list[dict[str, Any]]]:
    """Split studies into groups (train / validation / test) so that no patient is in two of them.

    Patients (``entry["patient"]``, else the CT path) are shuffled with ``seed`` and dealt out by
    ``fractions``; every study of a patient goes where the patient goes.

    Examples:
        >>> parts = split_by_patient([{"ct": "a", "pet": "b", "patient": p} for p in "AABCDE"], (0.5, 0.5))
        >>> sorted(len({e["patient"] for e in part}) for part in parts)
        [2, 3]
    """
    if not fractions or any(f < 0 for f in fractions) or sum(fractions) <= 0:
        raise ValueError(f"fractions must be non-negative with a positive sum, got {list(fractions)}")
    patients = list(dict.fromkeys(str(e.get("patient") or e["ct"]) for e in entries))
    random.Random(seed).shuffle(patients)
    bounds = np.round(np.cumsum(fractions) / sum(fractions) * len(patients)).astype(int)
    group = {p: int(np.searchsorted(bounds, i, side="right")) for i, p in enumerate(patients)}
    parts: list[list[dict[str, Any]]] = [[] for _ in fractions]
    for entry in entries:
        parts[group[str(entry.get("patient") or entry["ct"])]].append(dict(entry))
    return parts


class PETCTSliceDataset(Dataset):
    """Axial slices of PET/CT studies as network input: ``{"image": (C, H, W), "label", "index"}``.

    Args:
        studies: study entries (``ct``, ``pet``, optional ``label`` mask, ``patient``), or the path of a
            datalist JSON (then ``split`` picks its list).
        split: the datalist split (``"training"``, ``"validation"``, ``"test"``).
        channels: channel layout (``"ct_pet"`` or ``"ct_pet_fused"``, see ``transforms.petct``).
        window: CT window (``"lung"``, ``"mediastinal"`` or ``[low, high]`` HU).
        suv_max: SUV shown as 1.
        pixdim: in-plane pixel size in mm that every study is resampled to.
        spatial_size: in-plane slice size (pixels) after centred padding / cropping.
        min_lesion_pixels: lesion pixels that make a slice positive.
        transform: applied to each item (augmentation).
        pet_units: ``"bqml"`` (SUV from the DICOM header) or ``"suv"``.
        allow_frame_mismatch: accept PET and CT of different Frames of Reference.
        skip_bad: log and skip a study that fails to load (kept in :attr:`skipped`) instead of raising.

    Attributes:
        records: one dict per slice: ``patient``, ``study``, ``slice`` (index on the CT's axial axis),
            ``label`` (1, 0, or -1 without a mask), ``lesion_pixels``.
        studies: the studies loaded, each with its ``geometry`` (the CT's metadata and the slice grid's
            affine) for writing heatmaps back on the CT grid.
        skipped: ``(study, reason)`` of the studies left out.

    Examples:
        >>> ds = PETCTSliceDataset("petct/datalist.json", split="test")  # doctest: +SKIP
        >>> ds[0]["image"].shape, ds.records[0]["patient"]  # doctest: +SKIP
        (torch.Size([3, 96, 96]), 'PETCT-024')
    """

    def __init__(
        self,
        studies: Sequence[Mapping[str, Any]] | str | os.PathLike,
        split: str | None = None,
        channels: str = "ct_pet_fused",
        window: str | Sequence[float] = "lung",
        suv_max: float = 10.0,
        pixdim: Sequence[float] = (3.6, 3.6),
        spatial_size: Sequence[int] = (96, 96),
        min_lesion_pixels: int = 4,
        transform: Callable | None = None,
        pet_units: str = "bqml",
        allow_frame_mismatch: bool = False,
        skip_bad: bool = False,
    ) -> None:
        from lungcad_transforms.transforms.petct.array import LoadPETCT, PETCTChannels

        if isinstance(studies, (str, os.PathLike)):
            studies = read_petct_datalist(studies, split)
        self.channels = channels
        self.transform = transform
        self.min_lesion_pixels = int(min_lesion_pixels)
        self._load = LoadPETCT(pet_units, allow_frame_mismatch)
        self._stack = PETCTChannels(window, suv_max, channels)
        self._pixdim = (float(pixdim[0]), float(pixdim[1]), -1.0)  # -1: the CT's own slices
        self._size = (int(spatial_size[0]), int(spatial_size[1]), -1)
        self.studies: list[dict[str, Any]] = []
        self.skipped: list[tuple[str, str]] = list(getattr(studies, "skipped", []))
        self.records: list[dict[str, Any]] = []
        self._images: list[torch.Tensor] = []
        self._masks: list[torch.Tensor | None] = []
        for entry in studies:
            try:
                image, mask, geometry = self._prepare(entry)
            except (InputError, OSError, RuntimeError, ValueError) as err:
                if not skip_bad:
                    raise
                where = str(entry.get("study") or entry.get("patient") or entry.get("ct"))
                self.skipped.append((where, str(err)))
                logger.error("skipping PET/CT study %s: %s", where, err)
                continue
            self._add(entry, image, mask, geometry)
        if not self.records:
            raise InputError(str(split or "studies"), "no PET/CT study could be loaded")

    def _prepare(self, entry: Mapping[str, Any]) -> tuple[torch.Tensor, torch.Tensor | None, dict[str, Any]]:
        from monai.data import MetaTensor
        from monai.transforms import ResizeWithPadOrCrop, Spacing

        from lungcad_transforms.data.image_reader import load_image

        ct, pet = self._load(entry["ct"], entry["pet"])
        x = self._stack(ct, pet)
        spacing, crop = Spacing(pixdim=self._pixdim, mode="bilinear"), ResizeWithPadOrCrop(self._size)
        x = crop(spacing(x))
        mask = None
        if entry.get("label"):
            lesion = load_image(entry["label"])
            if tuple(lesion.shape) != tuple(ct.shape):
                raise InputError(
                    str(entry["label"]),
                    f"lesion mask {tuple(lesion.shape[1:])} is not on the CT grid {tuple(ct.shape[1:])}",
                )
            lesion = MetaTensor(lesion.as_tensor(), affine=ct.affine.clone())  # exactly the CT's grid
            near = Spacing(pixdim=self._pixdim, mode="nearest")
            mask = (crop(near(lesion)) > 0.5).to(torch.uint8).as_tensor()
        geometry = {
            "ct_meta": {k: ct.meta[k] for k in ("source_affine", "source_shape", "affine") if k in ct.meta},
            "ct_affine": np.asarray(ct.affine, dtype=np.float64),
            "ct_shape": tuple(int(s) for s in ct.shape[1:]),
            "slice_affine": np.asarray(x.affine, dtype=np.float64),
            "suv_factor": pet.meta.get("suv_factor"),
            "frame_of_reference_uid": ct.meta.get("frame_of_reference_uid", ""),
        }
        return x.as_tensor().float(), mask, geometry

    def _add(
        self, entry: Mapping[str, Any], image: torch.Tensor, mask: torch.Tensor | None, geometry: dict
    ) -> None:
        study_index = len(self.studies)
        patient = str(entry.get("patient") or entry.get("study") or entry["ct"])
        study = str(entry.get("study") or patient)
        self.studies.append({"patient": patient, "study": study, "ct": entry["ct"], "pet": entry["pet"],
                             "kind": entry.get("kind", ""), "geometry": geometry})  # fmt: skip
        self._images.append(image)
        self._masks.append(mask)
        counts = mask[0].sum(dim=(0, 1)).tolist() if mask is not None else [None] * image.shape[-1]
        for k, count in enumerate(counts):
            label = -1 if count is None else int(count >= self.min_lesion_pixels)
            self.records.append({"patient": patient, "study": study, "study_index": study_index, "slice": k,
                                 "label": label, "lesion_pixels": 0 if count is None else int(count)})  # fmt: skip

    def __len__(self) -> int:
        return len(self.records)

    def slice_image(self, index: int) -> torch.Tensor:
        """The (C, H, W) input of slice ``index``, before any augmentation."""
        record = self.records[index]
        return self._images[record["study_index"]][..., record["slice"]]

    def slice_mask(self, index: int) -> torch.Tensor | None:
        """The (H, W) lesion mask of slice ``index`` (uint8), or None for a study without a mask."""
        record = self.records[index]
        mask = self._masks[record["study_index"]]
        return None if mask is None else mask[0, ..., record["slice"]]

    def labels(self) -> np.ndarray:
        """The label of every slice (1, 0, -1 unknown)."""
        return np.asarray([r["label"] for r in self.records], dtype=np.int64)

    def sample_weights(self) -> torch.Tensor:
        """Per-slice weights that draw both classes equally often (for ``WeightedRandomSampler``)."""
        labels = self.labels()
        weights = np.ones(len(labels), dtype=np.float64)
        for value in (0, 1):
            n = int((labels == value).sum())
            if n:
                weights[labels == value] = 0.5 / n
        return torch.as_tensor(weights)

    def __getitem__(self, index: int) -> dict[str, Any]:
        record = self.records[index]
        item = {"image": self.slice_image(index).clone(), "label": torch.tensor(max(record["label"], 0)),
                "index": index}  # fmt: skip
        return self.transform(item) if self.transform is not None else item
