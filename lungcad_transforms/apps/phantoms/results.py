"""What the phantom makers return: :class:`CTPhantom`, :class:`PETPhantom`, :class:`MRPhantom` and their
:class:`Nodule` ground truth.

Geometry:
    Arrays are indexed ``[i, j, k]`` in DICOM/ITK LPS index order: ``i`` runs towards the patient's left
    (+x), ``j`` towards posterior (+y), ``k`` towards superior (+z), so the world position of a voxel is
    ``origin_lps + index * spacing`` (no direction flips). Nodule centres are LPS world millimetres, the
    LUNA16 convention; :mod:`lungcad_transforms.data.coords` converts to MONAI's RAS arrays.

Ground truth:
    ``lungs`` (CT) holds both lung regions as bounded by the pleura, the mediastinum and the diaphragm,
    with everything inside them (parenchyma, intrapulmonary vessels and airways, nodules), plus the voxels
    of every nodule in full (a juxtapleural nodule's base that bulges into the chest wall counts as lung).
    It excludes the trachea and main bronchi (mediastinal), the hila, heart, great vessels and chest wall.
    ``nodule_labels`` (``lesion_labels`` for PET and MR) is 0 for background and ``n`` for the voxels of
    ``nodules[n - 1]`` (voxel centre inside the nodule's surface; a part-solid nodule's label covers core
    and ground-glass rim). ``tissues`` labels every voxel with one of
    :data:`~lungcad_transforms.apps.phantoms.tissues.TISSUES`.

Everything is drawn from the maker's ``seed``: the same arguments give the same arrays, the same nodules
and the same series UID.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from lungcad_transforms.data.coords import affine_lps

if TYPE_CHECKING:
    from lungcad_transforms.apps.phantoms.anatomy import Anatomy

__all__ = ["NODULE_KINDS", "Nodule", "CTPhantom", "PETPhantom", "MRPhantom"]


NODULE_KINDS: tuple[str, ...] = ("solid", "part_solid", "ground_glass", "juxtapleural", "juxtavascular")


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


@dataclass(eq=False, kw_only=True)
class _Phantom:
    """What every phantom has: its grid, series UID, tissue map and the anatomy it was rendered from.

    Each subclass adds its image (``hu``, ``suv``, ``intensity``, named by ``image_field`` and also read as
    ``image``) and its ground truth.

    Attributes:
        spacing: voxel size (sx, sy, sz) in mm.
        origin_lps: LPS world position of voxel (0, 0, 0) in mm.
        seriesuid: a valid DICOM UID, deterministic in the maker's arguments.
        tissues: uint8 tissue map, codes in :data:`~lungcad_transforms.apps.phantoms.tissues.TISSUES`.
        anatomy: the geometry the image was rendered from; pass the phantom as ``reference`` to
            :func:`make_pet_phantom` / :func:`make_mr_phantom` for co-registered images.
    """

    modality: ClassVar[str]
    image_field: ClassVar[str]

    spacing: tuple[float, float, float]
    origin_lps: tuple[float, float, float]
    seriesuid: str
    tissues: np.ndarray | None = None
    anatomy: Anatomy | None = field(default=None, repr=False)

    @property
    def image(self) -> np.ndarray:
        """The image array under the modality's own name (``hu``, ``suv`` or ``intensity``)."""
        return getattr(self, self.image_field)

    def affine_lps(self) -> np.ndarray:
        """4x4 matrix mapping a voxel index ``(i, j, k, 1)`` to LPS world millimetres."""
        return affine_lps(self.spacing, self.origin_lps)


# every field is a keyword: the shared fields are declared once, in _Phantom, whatever each subclass adds


@dataclass(eq=False, kw_only=True)
class CTPhantom(_Phantom):
    """A synthetic chest CT and its ground truth (see the module docstring for the conventions).

    Attributes:
        hu: int16 Hounsfield units, shape (X, Y, Z), LPS index order; -2048 outside the field-of-view
            circle when one was asked for.
        lungs: bool ground-truth lungs.
        nodule_labels: uint8, 0 background, n for ``nodules[n - 1]``.
        nodules: the nodules, centres in LPS world mm.
        spacing, origin_lps, seriesuid, tissues, anatomy: as every phantom (:class:`_Phantom`).
    """

    modality: ClassVar[str] = "CT"

    image_field: ClassVar[str] = "hu"
    hu: np.ndarray
    lungs: np.ndarray
    nodule_labels: np.ndarray
    nodules: list[Nodule]


@dataclass(eq=False, kw_only=True)
class _LesionPhantom(_Phantom):
    """A PET or MR phantom: lesions instead of nodules, labelled like ``CTPhantom.nodule_labels``."""

    lesion_labels: np.ndarray
    lesions: list[Nodule]


@dataclass(eq=False, kw_only=True)
class PETPhantom(_LesionPhantom):
    """A synthetic FDG PET in body-weight SUV (float32, LPS index order) with hot lesions.

    ``lesions`` are spheres of known centre and diameter, ``lesion_suv`` their peak uptake before the
    scanner's blur; ``lesion_labels`` marks their voxels like ``CTPhantom.nodule_labels``.
    """

    modality: ClassVar[str] = "PT"

    image_field: ClassVar[str] = "suv"
    suv: np.ndarray
    lesion_suv: list[float]


@dataclass(eq=False, kw_only=True)
class MRPhantom(_LesionPhantom):
    """A synthetic T1-weighted chest MR (float32 signal, 0..~1100, LPS index order) with lesions."""

    modality: ClassVar[str] = "MR"

    image_field: ClassVar[str] = "intensity"
    intensity: np.ndarray
