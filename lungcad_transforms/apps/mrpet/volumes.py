"""MR/PET patients as the classifier sees them: the inputs found and paired, each patient loaded onto one
grid (PET in SUV onto the MR), normalised, and stacked into the channels of a mode."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.data import MetaTensor
from monai.transforms import MapTransform

from lungcad_transforms.errors import InputError

logger = logging.getLogger(__name__)

__all__ = ["MODES", "MODE_KEYS", "mode_keys", "mrpet_datalist", "pair_dicom_studies", "MRPETVolumed"]

#: the three modes the study trains and compares
MODES = ("mr", "pet", "mr_pet")
#: the channels (in order) of each mode
MODE_KEYS: dict[str, tuple[str, ...]] = {"mr": ("mr",), "pet": ("pet",), "mr_pet": ("mr", "pet")}


def mode_keys(mode: str) -> list[str]:
    """The image keys of ``mode`` in channel order.

    Examples:
        >>> mode_keys("mr_pet")
        ['mr', 'pet']
    """
    if mode not in MODE_KEYS:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    return list(MODE_KEYS[mode])


def _series_header(folder: Path):
    import pydicom

    for f in sorted(folder.iterdir()):
        if f.is_file():
            try:
                return pydicom.dcmread(f, stop_before_pixels=True,
                                       specific_tags=["StudyInstanceUID", "Modality", "PatientID"])  # fmt: skip
            except (pydicom.errors.InvalidDicomError, OSError):
                continue
    return None


def pair_dicom_studies(folder: str | os.PathLike) -> list[dict[str, Any]]:
    """Pair the MR and PET DICOM series under ``folder`` by Study Instance UID.

    Every sub-folder holding DICOM files is taken as one series; series of one study (same
    StudyInstanceUID) with Modality ``MR`` and ``PT`` make a patient.

    Returns:
        ``[{"mr": folder, "pet": folder, "patient": PatientID or study UID, "study_instance_uid": uid}]``,
        in study order.

    Raises:
        InputError: no DICOM series, a study with no MR or no PET (the missing modality named), or a study
            with several series of one modality.
    """
    root = Path(folder)
    if not root.is_dir():
        raise InputError(root, "is not a folder of DICOM studies")
    studies: dict[str, dict[str, Any]] = {}
    for sub in sorted({p.parent for p in root.rglob("*") if p.is_file()}):
        header = _series_header(sub)
        if header is None:
            continue
        uid = str(header.get("StudyInstanceUID", ""))
        study = studies.setdefault(
            uid, {"study_instance_uid": uid, "patient": str(header.get("PatientID", "") or uid)}
        )
        modality = {"MR": "mr", "PT": "pet"}.get(str(header.get("Modality", "")).upper())
        if modality is None:
            continue
        if modality in study:
            raise InputError(
                sub, f"study {uid} has several {modality.upper()} series ({study[modality]} and {sub})"
            )
        study[modality] = str(sub)
    if not studies:
        raise InputError(root, "holds no DICOM series")
    pairs = []
    for uid, study in studies.items():
        for key, name in (("mr", "MR"), ("pet", "PET")):
            if key not in study:
                raise InputError(
                    root, f"study {uid} (patient {study['patient']}) has no {name} series: missing modality"
                )
        pairs.append(study)
    return pairs


def mrpet_datalist(source: str | os.PathLike, split: str | None = None) -> list[dict[str, Any]]:
    """The patients of a datalist file (JSON: a list of ``{"mr": path, "pet": path, ...}``, or a dict of
    such lists, ``split`` naming one) or of a folder of DICOM studies (:func:`pair_dicom_studies`).

    Relative paths in a datalist are taken from the file's folder; each entry gets a ``patient`` (its own,
    else the MR file's name).

    Raises:
        InputError: the file is missing, not JSON, lacks ``split``, or an entry is not a mapping.
    """
    path = Path(source)
    if path.is_dir():
        return pair_dicom_studies(path)
    if not path.is_file():
        raise InputError(path, "datalist file does not exist")
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise InputError(path, f"is not JSON: {err}") from err
    if isinstance(content, dict):
        if split not in content:
            raise InputError(path, f"has no {split!r} list (keys: {', '.join(map(str, content))})")
        content = content[split]
    entries = []
    for i, entry in enumerate(content):
        if not isinstance(entry, Mapping):
            raise InputError(path, f"entry {i} is not a mapping of 'mr' / 'pet' paths")
        out = dict(entry)
        for key in ("mr", "pet", "label", "pet_label"):
            if out.get(key):
                out[key] = (
                    str((path.parent / out[key]).resolve()) if not Path(out[key]).is_absolute() else out[key]
                )
        out.setdefault("patient", Path(str(out.get("mr") or out.get("pet") or f"entry{i}")).name)
        entries.append(out)
    return entries


class MRPETVolumed(MapTransform):
    """Load one patient (``d["mr"]``, ``d["pet"]``, optional ``d["label"]`` tumour mask on the MR grid) and
    make ``d["image"]``: the mode's channels on one grid, in-plane resampled to ``spacing`` and padded or
    cropped to ``size``; ``d["label"]`` the mask on that grid (absent: ``None``).

    The PET goes to SUV where its tags allow (:class:`~lungcad_transforms.transforms.PETToSUV`) and onto
    the MR grid (:class:`~lungcad_transforms.transforms.AlignPETToMR`: world geometry in one Frame of
    Reference, else mutual-information registration); MR is scaled by its 1st..99th percentile to [0, 1],
    PET as SUV / ``suv_max`` clipped to [0, 1]. In mode ``pet`` without an MR the PET's own grid is used.
    ``d["registration"]`` keeps the alignment record.

    Args:
        mode: ``"mr"``, ``"pet"`` or ``"mr_pet"``.
        spacing: in-plane mm per voxel of the network input (slices keep theirs).
        size: in-plane voxels of the network input.
        suv_max: SUV shown as 1.
        registration, transform, min_overlap: as :class:`AlignPETToMR`.
        pet_units: as :class:`PETToSUV`.
        min_slices: fewest slices a volume needs (4 for a 3-D network; 1 for slices).

    Raises:
        InputError: a modality the mode needs is missing, the images are unreadable, of different
            patients, too thin, or do not overlap.
    """

    def __init__(
        self,
        mode: str = "mr_pet",
        spacing: Sequence[float] = (3.6, 3.6),
        size: Sequence[int] = (80, 80),
        suv_max: float = 10.0,
        registration: str = "auto",
        transform: str = "rigid",
        min_overlap: float = 0.2,
        pet_units: str = "auto",
        min_slices: int = 1,
    ) -> None:
        super().__init__(["mr", "pet"], allow_missing_keys=True)
        from monai.transforms import (
            ResizeWithPadOrCrop,
            ScaleIntensityRange,
            ScaleIntensityRangePercentiles,
            Spacing,
        )

        from lungcad_transforms.transforms.registration.array import AlignPETToMR, PETToSUV

        self.keys_needed = mode_keys(mode)
        self.mode = mode
        self.min_slices = int(min_slices)
        self.to_suv = PETToSUV(pet_units)
        self.align = AlignPETToMR(registration, transform, min_overlap)
        self.scale = {"mr": ScaleIntensityRangePercentiles(1.0, 99.0, 0.0, 1.0, clip=True),
                      "pet": ScaleIntensityRange(0.0, float(suv_max), 0.0, 1.0, clip=True)}  # fmt: skip
        self.spacing = [float(s) for s in spacing] + [-1.0]  # slices keep their thickness
        self.resample = {
            "bilinear": Spacing(self.spacing, mode="bilinear"),
            "nearest": Spacing(self.spacing, mode="nearest"),
        }
        self.crop = ResizeWithPadOrCrop([int(s) for s in size] + [-1])

    def _load(self, d: Mapping[Hashable, Any], key: str) -> MetaTensor:
        from lungcad_transforms.data.image_reader import load_image

        value = d[key]
        img = value if isinstance(value, MetaTensor) else load_image(value)
        if img.shape[-1] < self.min_slices:
            raise InputError(str(img.meta.get("filename_or_obj", value)),
                             f"has {img.shape[-1]} slice(s) (shape {tuple(img.shape[1:])}): a 3-D volume of at least "
                             f"{self.min_slices} slices is needed")  # fmt: skip
        return img

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        where = str(d.get("patient") or d.get("mr") or d.get("pet") or "<entry>")
        for key in self.keys_needed:
            if not d.get(key):
                raise InputError(
                    where,
                    f"mode {self.mode!r} needs a {key.upper()} image; the entry has none (missing modality)",
                )
        channels: dict[str, MetaTensor] = {}
        mr = self._load(d, "mr") if d.get("mr") else None
        if mr is not None:
            channels["mr"] = mr
        d["registration"] = None
        if d.get("pet"):
            try:
                pet = self.to_suv(self._load(d, "pet"))
                if mr is not None:
                    pet = self.align(mr, pet)
                    d["registration"] = pet.meta.get("registration")
                channels["pet"] = pet
            except InputError as err:
                if "pet" in self.keys_needed:
                    raise
                # mode "mr" shows the PET beside the heatmap only: a PET that will not align is left out
                logger.warning("%s: PET left out of the display: %s", where, err)
        grid = channels["mr"] if mr is not None else channels["pet"]
        label = None
        if d.get("label"):
            from lungcad_transforms.data.image_reader import load_image

            mask = load_image(d["label"]) if not isinstance(d["label"], MetaTensor) else d["label"]
            if tuple(mask.shape) != tuple(grid.shape):
                from lungcad_transforms.transforms.registration.functional import resample_through

                mask = resample_through(
                    mask, grid, mode="nearest"
                )  # a mask of another grid, by world geometry
            label = self.crop(self.resample["nearest"](MetaTensor((mask > 0.5).float(), affine=grid.affine)))
        stacked = torch.cat([self.scale[k](channels[k].float()).as_tensor() for k in self.keys_needed], dim=0)
        image = self.crop(self.resample["bilinear"](MetaTensor(stacked, affine=grid.affine)))
        d["image"] = image
        d["label"] = label
        d["pet_units"] = channels["pet"].meta.get("pet_units", "") if "pet" in channels else ""
        d["affine"] = np.asarray(image.affine)
        # the other modality, for display beside the Grad-CAM of single-modality modes
        d["display"] = {k: self.crop(self.resample["bilinear"](MetaTensor(self.scale[k](v.float()).as_tensor(),
                                                                           affine=grid.affine))).as_tensor()
                        for k, v in channels.items()}  # fmt: skip
        for key in ("mr", "pet"):
            d.pop(key, None)
        return d
