"""Paired synthetic FDG PET/CT studies written as DICOM: the embedded data of the PET/CT classifier.

Each patient is a CT phantom and a PET phantom of the same anatomy (one Frame of Reference, one Study
Instance UID), of one of three kinds:

- ``cancer``: FDG-avid solid lung tumours (1 or 2) with their CT correlate;
- ``benign``: hot spots of inflammation in the lung or mediastinum with no CT correlate (hard negatives:
  PET alone says "lesion", the CT says "nothing there");
- ``normal``: no lesion.

Every patient has physiological uptake (myocardium, liver, blood pool, marrow from the PET phantom) and,
at random, supraclavicular / paravertebral brown fat. The CT is written with Rescale tags, the PET in
Bq/ml with real radiopharmaceutical tags (dose, half-life, injection time, weight), so SUV is computed
back from the header as for a scanner's series. The lesion mask (tumours only) is NIfTI on the CT grid.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lungcad_transforms.utils.atomic import atomic_dir

logger = logging.getLogger(__name__)

__all__ = ["PATIENT_KINDS", "make_petct_study", "ensure_petct_dataset"]


PATIENT_KINDS = ("cancer", "benign", "normal")

_COMPLETE = "datalist.json"


def _add_blob(suv: np.ndarray, spacing, centre_idx, diameter_mm: float, peak: float) -> None:
    # a Gaussian the size of the spot: PET resolution blurs a small focus into about this shape
    grids = [(np.arange(n) - c) * s for n, c, s in zip(suv.shape, centre_idx, spacing, strict=True)]
    r2 = grids[0][:, None, None] ** 2 + grids[1][None, :, None] ** 2 + grids[2][None, None, :] ** 2
    sigma = max(diameter_mm / 2.355, 1e-3)
    suv += (peak * np.exp(-r2 / (2 * sigma * sigma))).astype(np.float32)


def _far_from(points: np.ndarray, spacing, lesions_idx: list[np.ndarray], min_mm: float) -> np.ndarray:
    if not lesions_idx:
        return points
    keep = np.ones(len(points), bool)
    for c in lesions_idx:
        keep &= np.linalg.norm((points - c) * np.asarray(spacing), axis=1) > min_mm
    return points[keep]


def make_petct_study(
    seed: int,
    kind: str,
    ct_shape: Sequence[int] = (96, 96, 40),
    ct_spacing: Sequence[float] = (3.6, 3.6, 4.0),
    pet_shape: Sequence[int] = (48, 48, 20),
) -> dict[str, Any]:
    """One synthetic PET/CT patient: ``{"ct": CTPhantom, "pet_suv": array, "pet": PETPhantom, "mask": array,
    "hot_spots": [...]}``.

    ``mask`` marks the tumour voxels on the CT grid (uint8); ``pet_suv`` is the PET phantom's SUV with the
    benign hot spots and brown fat added. See the module docstring for the kinds.

    Examples:
        >>> study = make_petct_study(0, "cancer", (64, 64, 24), (5.0, 5.0, 6.0), (32, 32, 12))
        >>> bool(study["mask"].any()), len(study["ct"].nodules) >= 1
        (True, True)
    """
    from lungcad_transforms.apps.phantoms.ct import make_ct_phantom
    from lungcad_transforms.apps.phantoms.pet_mr import make_pet_phantom
    from lungcad_transforms.apps.phantoms.tissues import TISSUES

    if kind not in PATIENT_KINDS:
        raise ValueError(f"kind must be one of {PATIENT_KINDS}, got {kind!r}")
    rng = np.random.default_rng([int(seed), 11])
    n_tumours = int(rng.integers(1, 3)) if kind == "cancer" else 0
    ct = make_ct_phantom(
        ct_shape, spacing=ct_spacing, seed=seed, n_nodules=n_tumours, nodule_kinds=("solid",) if n_tumours else None,
        nodule_diameter_mm=(14.0, 28.0), contrast=False,
    )  # fmt: skip
    pet = make_pet_phantom(pet_shape, reference=ct, n_lesions=n_tumours)
    suv = pet.suv.copy()
    spacing = np.asarray(pet.spacing)
    origin = np.asarray(pet.origin_lps)
    lesion_idx = [(np.asarray(n.center_lps) - origin) / spacing for n in pet.lesions]
    hot_spots: list[dict[str, Any]] = []
    if kind == "benign":
        # inflammation: in the lung or the mediastinal soft tissue, far from anything the CT shows
        candidates = np.argwhere((pet.tissues == TISSUES["lung"]) | (pet.tissues == TISSUES["muscle"]))
        candidates = candidates[(candidates[:, 2] > 2) & (candidates[:, 2] < suv.shape[2] - 3)]
        candidates = _far_from(candidates, spacing, lesion_idx, 30.0)
        for _ in range(int(rng.integers(1, 3))):
            centre = candidates[rng.integers(len(candidates))]
            diameter, peak = float(rng.uniform(10.0, 20.0)), float(rng.uniform(4.0, 10.0))
            _add_blob(suv, spacing, centre, diameter, peak)
            hot_spots.append({"kind": "inflammation", "center_lps": (origin + centre * spacing).tolist(),
                              "diameter_mm": diameter, "peak_suv": peak})  # fmt: skip
    if rng.random() < 0.4:
        # brown fat: symmetric foci in the fat of the upper field (supraclavicular / paravertebral)
        fat = np.argwhere(pet.tissues == TISSUES["fat"])
        fat = _far_from(fat[fat[:, 2] >= int(0.7 * suv.shape[2])], spacing, lesion_idx, 30.0)
        for _ in range(int(rng.integers(2, 5)) if len(fat) else 0):
            centre = fat[rng.integers(len(fat))]
            _add_blob(suv, spacing, centre, float(rng.uniform(8.0, 14.0)), float(rng.uniform(2.0, 5.0)))
            hot_spots.append({"kind": "brown_fat", "center_lps": (origin + centre * spacing).tolist()})
    return {"ct": ct, "pet": pet, "pet_suv": np.maximum(suv, 0).astype(np.float32),
            "mask": (ct.nodule_labels > 0).astype(np.uint8), "hot_spots": hot_spots}  # fmt: skip


def _write_study(study: dict[str, Any], folder: Path, mask_path: Path, patient_id: str) -> None:
    from pydicom.uid import generate_uid

    from lungcad_transforms.data.dicom_writer import write_dicom_series
    from lungcad_transforms.data.image_writer import write_nifti

    ct, pet = study["ct"], study["pet"]
    study_uid = generate_uid(entropy_srcs=[ct.seriesuid, "petct-study"])
    frame_uid = generate_uid(entropy_srcs=[ct.seriesuid, "petct-frame"])
    common = dict(study_uid=study_uid, frame_of_reference_uid=frame_uid, patient_id=patient_id,
                  patient_name=f"Phantom^{patient_id}", study_description="lungcad synthetic FDG PET/CT")  # fmt: skip
    write_dicom_series(ct.hu, ct.spacing, ct.origin_lps, folder / "CT", "CT", ct.seriesuid, series_number=2,
                       series_description="CT low dose for attenuation correction", **common)  # fmt: skip
    write_dicom_series(study["pet_suv"], pet.spacing, pet.origin_lps, folder / "PT", "PT", pet.seriesuid,
                       series_number=3, series_description="PET FDG AC", **common)  # fmt: skip
    write_nifti(study["mask"], ct.spacing, ct.origin_lps, mask_path)


def ensure_petct_dataset(
    dataset_dir: str | os.PathLike,
    n_train: int = 18,
    n_val: int = 6,
    n_test: int = 12,
    ct_shape: Sequence[int] = (96, 96, 40),
    ct_spacing: Sequence[float] = (3.6, 3.6, 4.0),
    pet_shape: Sequence[int] = (48, 48, 20),
    seed: int = 2025,
) -> str:
    """Create the embedded PET/CT dataset in ``dataset_dir`` unless it is there; return the folder.

    Patients cycle through :data:`PATIENT_KINDS` within each split (cancer, benign, normal, ...), so every
    split holds every kind; patient ``i`` is drawn from ``seed + i``. Safe to call from several processes
    at once (one builds, the others wait and find it).

    Returns:
        ``dataset_dir`` holding ``studies/<patient>/{CT,PT}/IM*.dcm``, ``masks/<patient>.nii.gz`` and
        ``datalist.json``: ``{"training": [...], "validation": [...], "test": [...]}`` with entries
        ``{"ct", "pet", "label", "patient", "kind"}`` (paths relative to the folder), split by patient.

    Examples:
        >>> root = ensure_petct_dataset("/tmp/petct", n_train=3, n_val=3, n_test=3)  # doctest: +SKIP
        >>> sorted(json.loads((Path(root) / "datalist.json").read_text()))  # doctest: +SKIP
        ['settings', 'test', 'training', 'validation']
    """
    from lungcad_transforms.utils.locks import dataset_lock

    root = Path(dataset_dir)
    settings = {"n_train": int(n_train), "n_val": int(n_val), "n_test": int(n_test),
                "ct_shape": [int(s) for s in ct_shape], "ct_spacing": [float(s) for s in ct_spacing],
                "pet_shape": [int(s) for s in pet_shape], "seed": int(seed)}  # fmt: skip
    with dataset_lock(root):
        if (root / _COMPLETE).is_file():
            stored = json.loads((root / _COMPLETE).read_text(encoding="utf-8")).get("settings")
            if stored != settings:
                logger.warning("%s was made with other settings (%s); using it as it is", root, stored)
            return str(root)
        logger.info("creating the embedded PET/CT phantom dataset in %s", root)
        with atomic_dir(root) as tmp:
            datalist: dict[str, Any] = {"settings": settings, "training": [], "validation": [], "test": []}
            splits = ["training"] * n_train + ["validation"] * n_val + ["test"] * n_test
            within = {"training": 0, "validation": 0, "test": 0}
            for i, split in enumerate(splits):
                kind = PATIENT_KINDS[within[split] % len(PATIENT_KINDS)]
                within[split] += 1
                patient = f"PETCT-{i:03d}"
                study = make_petct_study(seed + i, kind, ct_shape, ct_spacing, pet_shape)
                (tmp / "masks").mkdir(exist_ok=True)
                _write_study(study, tmp / "studies" / patient, tmp / "masks" / f"{patient}.nii.gz", patient)
                datalist[split].append({"ct": f"studies/{patient}/CT", "pet": f"studies/{patient}/PT",
                                        "label": f"masks/{patient}.nii.gz", "patient": patient, "kind": kind,
                                        "hot_spots": len(study["hot_spots"])})  # fmt: skip
            (tmp / _COMPLETE).write_text(json.dumps(datalist, indent=2), encoding="utf-8")
    return str(root)
