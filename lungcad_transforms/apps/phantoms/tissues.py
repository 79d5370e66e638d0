"""Phantom tissue classes, intensities per modality, and the phantom result types."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lungcad_transforms.apps.phantoms.anatomy import Anatomy

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from lungcad_transforms.data.coords import affine_lps

__all__ = ["NODULE_KINDS", "TISSUES", "Nodule", "CTPhantom", "PETPhantom", "MRPhantom"]


NODULE_KINDS: tuple[str, ...] = ("solid", "part_solid", "ground_glass", "juxtapleural", "juxtavascular")


#: Tissue codes of the ``tissues`` label map of every phantom.
TISSUES: dict[str, int] = {
    "air": 0,
    "table": 1,
    "table_foam": 2,
    "skin": 3,
    "fat": 4,
    "muscle": 5,
    "cortical_bone": 6,
    "marrow": 7,
    "cartilage": 8,
    "lung": 9,
    "airway": 10,
    "airway_wall": 11,
    "vessel": 12,
    "blood": 13,
    "myocardium": 14,
    "liver": 15,
    "spleen": 16,
    "kidney": 17,
    "bowel": 18,
    "gas": 19,
    "csf": 20,
    "fluid": 21,
    "bladder": 22,
    "nodule": 23,
}


_T = TISSUES


_N_TISSUES = len(TISSUES)


# Unenhanced CT attenuation (HU) per tissue; every case jitters them a little (see _ct_lut).
_CT_HU = {
    "air": -1000, "table": 150, "table_foam": -900, "skin": 30, "fat": -100, "muscle": 45,
    "cortical_bone": 1000, "marrow": 230, "cartilage": 120, "lung": -860, "airway": -1000,
    "airway_wall": 30, "vessel": 40, "blood": 40, "myocardium": 45, "liver": 58, "spleen": 48,
    "kidney": 32, "bowel": 25, "gas": -1000, "csf": 10, "fluid": 15, "bladder": 8, "nodule": 40,
}  # fmt: skip


# Portal-venous contrast phase: blood pool, perfused organs and lung vessels enhance.
_CT_HU_CONTRAST = {"vessel": 170, "blood": 190, "myocardium": 110, "liver": 105, "spleen": 115, "kidney": 170}


# FDG uptake (body-weight SUV) per tissue; myocardium and bladder vary most between patients.
_PET_SUV = {
    "air": 0.0, "table": 0.0, "table_foam": 0.0, "skin": 0.6, "fat": 0.3, "muscle": 0.7,
    "cortical_bone": 0.4, "marrow": 1.5, "cartilage": 0.5, "lung": 0.4, "airway": 0.0, "airway_wall": 0.9,
    "vessel": 1.5, "blood": 1.7, "myocardium": 3.0, "liver": 2.2, "spleen": 1.8, "kidney": 3.5,
    "bowel": 1.5, "gas": 0.0, "csf": 0.3, "fluid": 0.5, "bladder": 25.0, "nodule": 6.0,
}  # fmt: skip


# T1-weighted spin-echo signal (arbitrary units): fat and fatty marrow bright, flowing blood dark.
_MR_T1 = {
    "air": 0.0, "table": 0.0, "table_foam": 0.0, "skin": 450.0, "fat": 900.0, "muscle": 300.0,
    "cortical_bone": 20.0, "marrow": 650.0, "cartilage": 250.0, "lung": 35.0, "airway": 0.0,
    "airway_wall": 150.0, "vessel": 40.0, "blood": 50.0, "myocardium": 330.0, "liver": 480.0,
    "spleen": 380.0, "kidney": 360.0, "bowel": 300.0, "gas": 0.0, "csf": 110.0, "fluid": 140.0,
    "bladder": 90.0, "nodule": 340.0,
}  # fmt: skip


# Independent random streams, so that e.g. the PET noise of a case never changes its anatomy.
_STREAM_SPACING, _STREAM_ANATOMY, _STREAM_NODULES, _STREAM_CT, _STREAM_PET, _STREAM_MR = range(6)


# Size of an adult chest in real millimetres, used to scale the macro anatomy to the field of view.
_REAL_BODY_HALF_WIDTH_MM = 170.0


@dataclass(frozen=True)
class Nodule:
    """A nodule (or PET/MR lesion) of a phantom.

    Args:
        center_lps: centre in LPS world millimetres (LUNA16 ``coordX, coordY, coordZ``).
        diameter_mm: diameter of the sphere the nodule is built on.
        kind: one of :data:`NODULE_KINDS`.
    """

    center_lps: tuple[float, float, float]
    diameter_mm: float
    kind: str


class _PhantomGeometry:
    spacing: tuple[float, float, float]
    origin_lps: tuple[float, float, float]

    def affine_lps(self) -> np.ndarray:
        """4x4 matrix mapping a voxel index ``(i, j, k, 1)`` to LPS world millimetres."""
        return affine_lps(self.spacing, self.origin_lps)


@dataclass(eq=False)
class CTPhantom(_PhantomGeometry):
    """A synthetic chest CT and its ground truth (see the module docstring for the conventions).

    Attributes:
        hu: int16 Hounsfield units, shape (X, Y, Z), LPS index order; -2048 outside the field-of-view
            circle when one was asked for.
        spacing: voxel size (sx, sy, sz) in mm.
        origin_lps: LPS world position of voxel (0, 0, 0) in mm.
        lungs: bool ground-truth lungs.
        nodule_labels: uint8, 0 background, n for ``nodules[n - 1]``.
        nodules: the nodules, centres in LPS world mm.
        seriesuid: a valid DICOM UID, deterministic in the arguments.
        tissues: uint8 tissue map, codes in :data:`TISSUES`.
        anatomy: the geometry the image was rendered from; pass the phantom as ``reference`` to
            :func:`make_pet_phantom` / :func:`make_mr_phantom` for co-registered images.
    """

    modality: ClassVar[str] = "CT"

    hu: np.ndarray
    spacing: tuple[float, float, float]
    origin_lps: tuple[float, float, float]
    lungs: np.ndarray
    nodule_labels: np.ndarray
    nodules: list[Nodule]
    seriesuid: str
    tissues: np.ndarray | None = None
    anatomy: Anatomy | None = field(default=None, repr=False)

    @property
    def image(self) -> np.ndarray:
        return self.hu


@dataclass(eq=False)
class PETPhantom(_PhantomGeometry):
    """A synthetic FDG PET in body-weight SUV (float32, LPS index order) with hot lesions.

    ``lesions`` are spheres of known centre and diameter, ``lesion_suv`` their peak uptake before the
    scanner's blur; ``lesion_labels`` marks their voxels like ``CTPhantom.nodule_labels``.
    """

    modality: ClassVar[str] = "PT"

    suv: np.ndarray
    spacing: tuple[float, float, float]
    origin_lps: tuple[float, float, float]
    lesion_labels: np.ndarray
    lesions: list[Nodule]
    lesion_suv: list[float]
    seriesuid: str
    tissues: np.ndarray | None = None
    anatomy: Anatomy | None = field(default=None, repr=False)

    @property
    def image(self) -> np.ndarray:
        return self.suv


@dataclass(eq=False)
class MRPhantom(_PhantomGeometry):
    """A synthetic T1-weighted chest MR (float32 signal, 0..~1100, LPS index order) with lesions."""

    modality: ClassVar[str] = "MR"

    intensity: np.ndarray
    spacing: tuple[float, float, float]
    origin_lps: tuple[float, float, float]
    lesion_labels: np.ndarray
    lesions: list[Nodule]
    seriesuid: str
    tissues: np.ndarray | None = None
    anatomy: Anatomy | None = field(default=None, repr=False)

    @property
    def image(self) -> np.ndarray:
        return self.intensity
