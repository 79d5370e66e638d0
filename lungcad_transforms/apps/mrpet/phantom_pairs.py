"""Paired synthetic chest MR + FDG PET studies written as DICOM: the MR/PET classifier's embedded data.

Each patient is an MR phantom and a PET phantom of one anatomy (the phantoms of
:mod:`lungcad_transforms.apps.phantoms`), of one of four kinds:

- ``normal``: no tumour;
- ``both``: tumours (1 or 2) plain in both modalities;
- ``pet_dominant``: FDG-avid tumours whose MR contrast is faded to ``faint`` of its own (MR alone
  hardly shows them);
- ``mr_dominant``: tumours plain on MR whose uptake is faded to ``faint`` (a low-avidity tumour).

so that either modality alone misses some tumours that the pair shows. Both series share the Study
Instance UID; PET is stored in Bq/ml with the radiopharmaceutical tags, so SUV comes back from the header.
The ``misaligned`` split holds pairs whose PET is in its own Frame of Reference and rigidly moved by a
known transform (``misalignment_lps``: fixed MR point -> PET point, LPS mm), for the registration path.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from lungcad_transforms.utils.atomic import atomic_dir

logger = logging.getLogger(__name__)

__all__ = ["PAIR_KINDS", "MRPETDataSettings", "rigid_matrix_lps", "make_mrpet_pair", "ensure_mrpet_dataset"]

PAIR_KINDS = ("normal", "both", "pet_dominant", "mr_dominant")
_COMPLETE = "datalist.json"


def rigid_matrix_lps(
    angles_deg: Sequence[float], translation_mm: Sequence[float], center_lps: Sequence[float]
) -> np.ndarray:
    """A 4x4 rigid transform (LPS mm): rotations about x, y, z (degrees, applied x first) about
    ``center_lps``, then ``translation_mm``.

    Examples:
        >>> m = rigid_matrix_lps([0, 0, 90], [1, 0, 0], [0, 0, 0])
        >>> np.round(m @ [1, 0, 0, 1], 6).tolist()
        [1.0, 1.0, 0.0, 1.0]
    """
    from scipy.spatial.transform import Rotation

    out = np.eye(4)
    out[:3, :3] = Rotation.from_euler("xyz", angles_deg, degrees=True).as_matrix()
    c = np.asarray(center_lps, dtype=float)
    out[:3, 3] = c - out[:3, :3] @ c + np.asarray(translation_mm, dtype=float)
    return out


def _fade(image: np.ndarray, labels: np.ndarray, spacing, visibility: float, reach_mm: float) -> np.ndarray:
    """Fade lesions towards their surroundings: contrast kept to ``visibility`` (1: unchanged)."""
    if visibility >= 1.0 or not labels.any():
        return image
    lesion = labels > 0
    reach = [max(reach_mm / s, 1.0) for s in spacing]
    grown = ndimage.gaussian_filter(lesion.astype(np.float32), sigma=[r / 2 for r in reach]) > 0.02
    shell = ndimage.binary_dilation(grown, iterations=2) & ~grown
    background = float(np.median(image[shell])) if shell.any() else float(np.median(image))
    weight = np.clip(
        ndimage.gaussian_filter(grown.astype(np.float32), sigma=[r / 3 for r in reach]) * 1.5, 0, 1
    )
    return (image + weight * (1.0 - visibility) * (background - image)).astype(np.float32)


def _moved(volume: np.ndarray, spacing, origin_lps, matrix_lps: np.ndarray, order: int) -> np.ndarray:
    """The volume's content moved so that ``moved(y) = volume(matrix @ y)`` for points y on its own grid."""
    s, o = np.asarray(spacing, float), np.asarray(origin_lps, float)
    # voxel -> world -> moved world -> voxel, as one affine in voxel units
    to_world = np.eye(4)
    to_world[:3, :3], to_world[:3, 3] = np.diag(s), o
    voxel = np.linalg.inv(to_world) @ matrix_lps @ to_world
    return ndimage.affine_transform(
        volume, voxel[:3, :3], voxel[:3, 3], order=order, mode="constant", cval=0.0
    )


def make_mrpet_pair(
    seed: int,
    kind: str,
    mr_shape: Sequence[int] = (80, 80, 24),
    mr_spacing: Sequence[float] = (3.6, 3.6, 5.0),
    pet_shape: Sequence[int] = (48, 48, 24),
    faint: float = 0.12,
    misalignment_lps: np.ndarray | None = None,
) -> dict[str, Any]:
    """One synthetic MR/PET patient.

    Returns:
        ``{"mr": MRPhantom, "pet": PETPhantom, "mr_image", "pet_suv", "mask" (MR grid, uint8),
        "pet_mask" (PET grid), "visibility": {"mr": v, "pet": v}, "misalignment_lps": 4x4 or None}``;
        with a misalignment the PET image and mask are moved by it (``pet(y) = aligned(M @ y)``).

    Examples:
        >>> pair = make_mrpet_pair(0, "pet_dominant", (48, 48, 16), (6.0, 6.0, 6.0), (24, 24, 16))
        >>> pair["visibility"], bool(pair["mask"].any())
        ({'mr': 0.12, 'pet': 1.0}, True)
    """
    from lungcad_transforms.apps.phantoms.pet_mr import make_mr_phantom, make_pet_phantom

    if kind not in PAIR_KINDS:
        raise ValueError(f"kind must be one of {PAIR_KINDS}, got {kind!r}")
    rng = np.random.default_rng([int(seed), 12])
    n_tumours = 0 if kind == "normal" else int(rng.integers(1, 3))
    mr = make_mr_phantom(mr_shape, spacing=mr_spacing, seed=seed, n_lesions=n_tumours)
    pet = make_pet_phantom(pet_shape, reference=mr, n_lesions=n_tumours)
    visibility = {
        "mr": faint if kind == "pet_dominant" else 1.0,
        "pet": faint if kind == "mr_dominant" else 1.0,
    }
    mr_image = _fade(mr.intensity, mr.lesion_labels, mr.spacing, visibility["mr"], reach_mm=4.0)
    pet_suv = _fade(pet.suv, pet.lesion_labels, pet.spacing, visibility["pet"], reach_mm=12.0)
    pet_mask = (pet.lesion_labels > 0).astype(np.uint8)
    if misalignment_lps is not None:
        m = np.asarray(misalignment_lps, float)
        pet_suv = np.maximum(_moved(pet_suv, pet.spacing, pet.origin_lps, m, order=1), 0).astype(np.float32)
        pet_mask = _moved(pet_mask, pet.spacing, pet.origin_lps, m, order=0).astype(np.uint8)
    return {"mr": mr, "pet": pet, "mr_image": mr_image, "pet_suv": pet_suv,
            "mask": (mr.lesion_labels > 0).astype(np.uint8), "pet_mask": pet_mask, "visibility": visibility,
            "misalignment_lps": None if misalignment_lps is None else np.asarray(misalignment_lps).tolist()}  # fmt: skip


def _write_pair(pair: dict[str, Any], folder: Path, masks: Path, patient_id: str) -> None:
    from pydicom.uid import generate_uid

    from lungcad_transforms.data.dicom_writer import write_dicom_series
    from lungcad_transforms.data.image_writer import write_nifti

    mr, pet = pair["mr"], pair["pet"]
    study_uid = generate_uid(entropy_srcs=[mr.seriesuid, "mrpet-study"])
    mr_frame = generate_uid(entropy_srcs=[mr.seriesuid, "mrpet-frame"])
    # a misaligned PET lives in its own Frame of Reference: world coordinates do not relate the two
    pet_frame = (
        mr_frame
        if pair["misalignment_lps"] is None
        else generate_uid(entropy_srcs=[pet.seriesuid, "pet-frame"])
    )
    common = dict(study_uid=study_uid, patient_id=patient_id, patient_name=f"Phantom^{patient_id}",
                  study_description="lungcad synthetic chest MR + FDG PET")  # fmt: skip
    write_dicom_series(pair["mr_image"], mr.spacing, mr.origin_lps, folder / "MR", "MR", mr.seriesuid,
                       frame_of_reference_uid=mr_frame, series_number=2, series_description="T1 axial", **common)  # fmt: skip
    write_dicom_series(pair["pet_suv"], pet.spacing, pet.origin_lps, folder / "PT", "PT", pet.seriesuid,
                       frame_of_reference_uid=pet_frame, series_number=3, series_description="PET FDG AC", **common)  # fmt: skip
    write_nifti(pair["mask"], mr.spacing, mr.origin_lps, masks / f"{patient_id}.nii.gz")
    write_nifti(pair["pet_mask"], pet.spacing, pet.origin_lps, masks / f"{patient_id}_pet.nii.gz")


def _misalignment(rng: np.random.Generator, centre: np.ndarray, max_deg: float, max_mm: float) -> np.ndarray:
    angles = rng.uniform(-max_deg, max_deg, 3)
    shift = rng.uniform(-max_mm, max_mm, 3)
    return rigid_matrix_lps(angles, shift, centre)


@dataclass(frozen=True)
class MRPETDataSettings:
    """What :func:`ensure_mrpet_dataset` builds (stored in ``datalist.json`` as ``settings``).

    Attributes:
        n_train, n_val, n_test: patients per split (kinds cycle through :data:`PAIR_KINDS` in each).
        n_misaligned: patients whose PET is in its own frame, moved by a known rigid transform.
        mr_shape, mr_spacing: the MR grid (voxels, mm); the PET covers the same box.
        pet_shape: the PET grid (voxels).
        faint: contrast a faded tumour keeps in its faint modality.
        max_misalignment_deg, max_misalignment_mm: bounds of the misaligned set's rotations and shifts.
        seed: patient ``i`` is drawn from ``seed + i``.
    """

    n_train: int = 32
    n_val: int = 8
    n_test: int = 24
    n_misaligned: int = 4
    mr_shape: tuple[int, ...] = (80, 80, 24)
    mr_spacing: tuple[float, ...] = (3.6, 3.6, 5.0)
    pet_shape: tuple[int, ...] = (48, 48, 24)
    faint: float = 0.12
    max_misalignment_deg: float = 6.0
    max_misalignment_mm: float = 12.0
    seed: int = 4040

    def as_json(self) -> dict[str, Any]:
        """The settings with JSON types (lists for the grids), as ``datalist.json`` stores them."""
        grids = {"mr_shape": [int(v) for v in self.mr_shape], "mr_spacing": [float(v) for v in self.mr_spacing],
                 "pet_shape": [int(v) for v in self.pet_shape]}  # fmt: skip
        return asdict(self) | grids


def _misaligned_matrix(settings: MRPETDataSettings, i: int, kind: str) -> np.ndarray:
    extent = np.asarray(settings.mr_shape, float) * np.asarray(settings.mr_spacing, float)
    rng = np.random.default_rng([settings.seed + i, 13])
    # about the middle of the MR box (the phantom origin centres the box on the patient)
    probe = make_mrpet_pair(settings.seed + i, kind, settings.mr_shape, settings.mr_spacing, settings.pet_shape,
                            settings.faint)["mr"]  # fmt: skip
    centre = np.asarray(probe.origin_lps, float) + extent / 2
    return _misalignment(rng, centre, settings.max_misalignment_deg, settings.max_misalignment_mm)


def _build_dataset(tmp: Path, settings: MRPETDataSettings) -> dict[str, Any]:
    """Write every patient's studies and masks under ``tmp``; return the datalist."""
    names = ("training", "validation", "test", "misaligned")
    counts = (settings.n_train, settings.n_val, settings.n_test, settings.n_misaligned)
    splits = [name for name, n in zip(names, counts, strict=True) for _ in range(n)]
    datalist: dict[str, Any] = {"settings": settings.as_json(), **{name: [] for name in names}}
    within = dict.fromkeys(names, 0)
    (tmp / "masks").mkdir()
    for i, split in enumerate(splits):
        kind = PAIR_KINDS[within[split] % len(PAIR_KINDS)]
        within[split] += 1
        patient = f"MRPET-{i:03d}"
        matrix = _misaligned_matrix(settings, i, kind) if split == "misaligned" else None
        pair = make_mrpet_pair(settings.seed + i, kind, settings.mr_shape, settings.mr_spacing, settings.pet_shape,
                               settings.faint, matrix)  # fmt: skip
        _write_pair(pair, tmp / "studies" / patient, tmp / "masks", patient)
        datalist[split].append({"mr": f"studies/{patient}/MR", "pet": f"studies/{patient}/PT",
                                "label": f"masks/{patient}.nii.gz", "pet_label": f"masks/{patient}_pet.nii.gz",
                                "patient": patient, "kind": kind, "tumour": int(pair["mask"].any()),
                                "misalignment_lps": pair["misalignment_lps"]})  # fmt: skip
    return datalist


def ensure_mrpet_dataset(dataset_dir: str | os.PathLike, **settings: Any) -> str:
    """Create the embedded MR/PET dataset in ``dataset_dir`` unless it is there; return the folder.

    Args:
        dataset_dir: the dataset folder.
        **settings: fields of :class:`MRPETDataSettings` (an unknown one is a ``TypeError``).

    Safe to call from several processes at once (one builds under a file lock, the others wait and find
    it); a folder made with other settings is used as it is, with a warning.

    Returns:
        ``dataset_dir`` holding ``studies/<patient>/{MR,PT}/IM*.dcm``, ``masks/<patient>.nii.gz`` (MR grid),
        ``masks/<patient>_pet.nii.gz`` (PET grid) and ``datalist.json``: ``{"training", "validation",
        "test", "misaligned"}`` lists of ``{"mr", "pet", "label", "pet_label", "patient", "kind",
        "tumour", "misalignment_lps"}`` (paths relative to the folder), split by patient.

    Examples:
        >>> root = ensure_mrpet_dataset("/tmp/mrpet", n_train=4, n_val=4, n_test=4, n_misaligned=1)  # doctest: +SKIP
        >>> sorted(json.loads((Path(root) / "datalist.json").read_text()))  # doctest: +SKIP
        ['misaligned', 'settings', 'test', 'training', 'validation']
    """
    from lungcad_transforms.utils.locks import dataset_lock

    root, spec = Path(dataset_dir), MRPETDataSettings(**settings)
    with dataset_lock(root):
        if (root / _COMPLETE).is_file():
            stored = json.loads((root / _COMPLETE).read_text(encoding="utf-8")).get("settings")
            if stored != spec.as_json():
                logger.warning("%s was made with other settings (%s); using it as it is", root, stored)
            return str(root)
        logger.info("creating the embedded MR/PET phantom dataset in %s", root)
        with atomic_dir(root) as tmp:
            (tmp / _COMPLETE).write_text(json.dumps(_build_dataset(tmp, spec), indent=2), encoding="utf-8")
    return str(root)
