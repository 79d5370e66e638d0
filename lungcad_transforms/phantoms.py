"""Synthetic chest CT, PET and MR phantoms with known ground truth.

The phantoms are the embedded default data of the project: demos, tests and the bundles' first runs use
them when no real data is configured. They are built to look like the real thing at the scale that the
models see (a patch of a few centimetres): a body with skin, fat and muscle, ribs, sternum and spine, a
patient table below the body, two lungs with parenchymal texture, airways with walls, tapering vessel
trees, a heart and great vessels, the upper abdomen below the diaphragm, and nodules of known centre,
diameter and kind (solid, part-solid, ground-glass, juxtapleural, juxtavascular).

Geometry:
    Arrays are indexed ``[i, j, k]`` in DICOM/ITK LPS index order: ``i`` runs towards the patient's left
    (+x), ``j`` towards posterior (+y), ``k`` towards superior (+z), so the world position of a voxel is
    ``origin_lps + index * spacing`` (no direction flips). Nodule centres are LPS world millimetres, the
    LUNA16 convention. ``lungcad_transforms.coords`` converts to MONAI's RAS arrays elsewhere.

Scale:
    The macro anatomy (body, lungs, heart, ribs) scales to the field of view: the body fills most of the
    in-plane field of view and the chest fills the slab from the upper abdomen (bottom slices) to the lung
    apices (top slices), so a small test volume still looks like a chest. The anatomy is therefore
    stretched in z when the slab is long compared with its width (up to 3 times; a still longer slab
    shows the abdomen below the chest, a short one the middle of the chest). Nodules are true to size in millimetres
    (3 to 30 mm by default, clipped to what fits in the lung), and vessels and airways taper to the
    resolution limit, so the local appearance at voxel level is like a real scan.

Everything is drawn from ``seed`` (numpy ``default_rng`` streams): the same arguments give the same arrays,
the same nodules and the same series UID.

Ground truth:
    ``lungs`` (CT) holds both lung regions as bounded by the pleura, the mediastinum and the diaphragm, with
    everything inside them (parenchyma, intrapulmonary vessels and airways, nodules), plus the voxels of
    every nodule in full (a juxtapleural nodule's base that bulges into the chest wall counts as lung). It
    excludes the trachea and main bronchi (mediastinal), the hila, heart, great vessels and chest wall.
    ``nodule_labels`` is 0 for background and ``n`` for the voxels of ``nodules[n - 1]`` (voxel centre
    inside the nodule's surface; a part-solid nodule's label covers core and ground-glass rim).
    ``tissues`` labels every voxel with one of :data:`TISSUES`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
from pydicom.uid import generate_uid
from scipy import ndimage

__all__ = [
    "NODULE_KINDS",
    "TISSUES",
    "Nodule",
    "Anatomy",
    "CTPhantom",
    "PETPhantom",
    "MRPhantom",
    "make_anatomy",
    "make_ct_phantom",
    "make_pet_phantom",
    "make_mr_phantom",
]

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


def _affine_lps(spacing: Sequence[float], origin_lps: Sequence[float]) -> np.ndarray:
    affine = np.eye(4)
    affine[:3, :3] = np.diag(np.asarray(spacing, dtype=float))
    affine[:3, 3] = np.asarray(origin_lps, dtype=float)
    return affine


class _PhantomGeometry:
    spacing: tuple[float, float, float]
    origin_lps: tuple[float, float, float]

    def affine_lps(self) -> np.ndarray:
        """4x4 matrix mapping a voxel index ``(i, j, k, 1)`` to LPS world millimetres."""
        return _affine_lps(self.spacing, self.origin_lps)


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


# --------------------------------------------------------------------------------------------- grid ---


@dataclass(frozen=True)
class _Grid:
    shape: tuple[int, int, int]
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]

    @property
    def box_lo(self) -> np.ndarray:
        return np.asarray(self.origin) - 0.5 * np.asarray(self.spacing)

    @property
    def box_hi(self) -> np.ndarray:
        return np.asarray(self.origin) + (np.asarray(self.shape) - 0.5) * np.asarray(self.spacing)

    def axis(self, d: int) -> np.ndarray:
        return (self.origin[d] + self.spacing[d] * np.arange(self.shape[d])).astype(np.float32)

    def open_coords(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return (
            self.axis(0).reshape(-1, 1, 1),
            self.axis(1).reshape(1, -1, 1),
            self.axis(2).reshape(1, 1, -1),
        )

    def bbox(self, lo_mm: np.ndarray, hi_mm: np.ndarray) -> tuple[slice, slice, slice] | None:
        """Index slices of the voxels whose centres may lie in the world box [lo_mm, hi_mm]."""
        sl = []
        for d in range(3):
            a = math.floor((lo_mm[d] - self.origin[d]) / self.spacing[d])
            b = math.ceil((hi_mm[d] - self.origin[d]) / self.spacing[d]) + 1
            a, b = max(a, 0), min(b, self.shape[d])
            if a >= b:
                return None
            sl.append(slice(a, b))
        return tuple(sl)  # type: ignore[return-value]

    def local_coords(self, sl: tuple[slice, slice, slice]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        x = self.axis(0)[sl[0]].reshape(-1, 1, 1)
        y = self.axis(1)[sl[1]].reshape(1, -1, 1)
        z = self.axis(2)[sl[2]].reshape(1, 1, -1)
        return x, y, z

    @property
    def soft_width(self) -> float:
        # edge width for partial-volume fractions: about one in-plane voxel
        return float(np.sqrt(self.spacing[0] * self.spacing[1]))


def _validate_grid(shape: Sequence[int], spacing: Sequence[float] | None) -> tuple[int, int, int]:
    shape_t = tuple(int(s) for s in shape)
    if len(shape_t) != 3 or min(shape_t) < 8 or min(shape_t[:2]) < 16:
        raise ValueError(f"phantom shape must be 3-D with at least 16x16x8 voxels, got {tuple(shape)}")
    if spacing is not None:
        sp = tuple(float(s) for s in spacing)
        if len(sp) != 3 or not all(np.isfinite(sp)) or min(sp) <= 0:
            raise ValueError(f"spacing must be three positive finite numbers (mm), got {spacing}")
    return shape_t  # type: ignore[return-value]


def _rng(seed: int, stream: int, *extra: int) -> np.random.Generator:
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, stream, *extra])


# --------------------------------------------------------------------------------- shape primitives ---


def _segment_distance(x, y, z, p0: np.ndarray, p1: np.ndarray):
    """Distance of points to the segment p0-p1, and the position (0..1) of the closest point on it.

    Works on any broadcastable coordinate arrays (open grids or flat point lists)."""
    ax = p1 - p0
    len2 = float(ax @ ax)
    dx, dy, dz = x - p0[0], y - p0[1], z - p0[2]
    if len2 < 1e-12:
        return np.sqrt(dx * dx + dy * dy + dz * dz), np.zeros(
            np.broadcast_shapes(dx.shape, dy.shape, dz.shape)
        )
    s = (dx * ax[0] + dy * ax[1] + dz * ax[2]) * (1.0 / len2)
    s = np.clip(s, 0.0, 1.0)
    qx, qy, qz = dx - s * ax[0], dy - s * ax[1], dz - s * ax[2]
    return np.sqrt(qx * qx + qy * qy + qz * qz), s


@dataclass
class _Tube:
    """A tapered capsule (vessel, airway, aorta segment...)."""

    p0: np.ndarray
    p1: np.ndarray
    r0: float
    r1: float

    @property
    def rmax(self) -> float:
        return max(self.r0, self.r1)

    def lo_hi(self, pad: float) -> tuple[np.ndarray, np.ndarray]:
        return np.minimum(self.p0, self.p1) - self.rmax - pad, np.maximum(self.p0, self.p1) + self.rmax + pad

    def signed(self, x, y, z, grow: float = 0.0):
        d, s = _segment_distance(x, y, z, self.p0, self.p1)
        return d - (self.r0 + s * (self.r1 - self.r0) + grow)


def _tube_fraction(grid: _Grid, tube: _Tube, grow: float = 0.0):
    """Partial-volume fraction (0..1) of a tube on the grid, within its bounding box."""
    h = grid.soft_width
    sl = grid.bbox(*tube.lo_hi(grow + h))
    if sl is None:
        return None, None
    x, y, z = grid.local_coords(sl)
    frac = np.clip(0.5 - tube.signed(x, y, z, grow) / h, 0.0, 1.0).astype(np.float32)
    return sl, frac


def _paint_tube(
    organs: np.ndarray, grid: _Grid, tube: _Tube, code: int, where: np.ndarray | None = None
) -> None:
    sl = grid.bbox(*tube.lo_hi(0.0))
    if sl is None:
        return
    x, y, z = grid.local_coords(sl)
    inside = tube.signed(x, y, z) <= 0
    if where is not None:
        inside &= where[sl]
    np.copyto(organs[sl], np.uint8(code), where=inside)


def _smooth_noise(rng: np.random.Generator, shape: Sequence[int], factor: int = 4) -> np.ndarray:
    """Unit-variance random field correlated over a few voxels (cheap: drawn coarse, then interpolated).

    scipy has no band-limited noise generator; filtering a coarse white field and zooming it is the
    usual trick and costs a small fraction of filtering a full-size one."""
    coarse_shape = [max(2, -(-int(s) // factor) + 1) for s in shape]
    coarse = ndimage.gaussian_filter(rng.standard_normal(coarse_shape, dtype=np.float32), 0.8)
    zoom = [int(s) / c for s, c in zip(shape, coarse_shape, strict=True)]
    field_ = ndimage.zoom(coarse, zoom, order=1, grid_mode=True, mode="nearest")
    field_ = field_[: shape[0], : shape[1], : shape[2]]
    if field_.shape != tuple(shape):  # zoom rounds the output size
        pad = [(0, int(s) - f) for s, f in zip(shape, field_.shape, strict=True)]
        field_ = np.pad(field_, pad, mode="edge")
    std = float(field_.std()) or 1.0
    return ((field_ - field_.mean()) / std).astype(np.float32)


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v / n if n > 0 else v


def _sphere_directions() -> np.ndarray:
    # the 26 neighbour directions of a voxel: enough to probe whether a sphere fits in a region
    dirs = np.array(
        [(a, b, c) for a in (-1, 0, 1) for b in (-1, 0, 1) for c in (-1, 0, 1) if (a, b, c) != (0, 0, 0)]
    )
    return dirs / np.linalg.norm(dirs, axis=1, keepdims=True)


_DIRS26 = _sphere_directions()


def _grow_tree(
    rng: np.random.Generator,
    targets: np.ndarray,
    root: np.ndarray,
    r_root: float,
    r_min: float,
    length_frac: float = 0.45,
    n_min: int = 3,
    max_depth: int = 16,
) -> list[_Tube]:
    """A space-filling branching tree (vessels or airways) grown into a cloud of target points.

    Kitaoka-style construction: each branch heads for the centroid of the lung region it supplies,
    stops part way, and splits the region in two by a plane through the branch; the child radii follow
    Murray's law (r^3 proportional to the supplied volume). Not in scipy/scikit-image, hence by hand."""
    tubes: list[_Tube] = []
    stack = [(root, np.arange(len(targets)), r_root, 0)]
    while stack:
        start, idx, radius, depth = stack.pop()
        pts = targets[idx]
        centroid = pts.mean(axis=0)
        vec = centroid - start
        dist = float(np.linalg.norm(vec))
        if dist < 1e-6:
            continue
        if len(idx) < n_min or depth >= max_depth:
            tubes.append(_Tube(start, start + 0.8 * vec, radius, 0.7 * radius))
            continue
        frac = length_frac * rng.uniform(0.85, 1.15)
        end = start + frac * vec
        direction = vec / dist
        # the territory is split by a plane that contains the branch, across the territory's widest
        # extent seen along the branch: children then fan out sideways, as in a real lung, instead of
        # stacking along the long axis of an elongated lung
        rel = pts - centroid
        flat = rel - np.outer(rel @ direction, direction)
        axis = np.linalg.eigh(flat.T @ flat)[1][:, -1]
        side = rel @ axis < 0
        n1 = int(side.sum())
        if n1 == 0 or n1 == len(idx):
            tubes.append(_Tube(start, start + 0.8 * vec, radius, 0.7 * radius))
            continue
        tubes.append(_Tube(start, end, radius, radius * 0.95))
        for part in (idx[side], idx[~side]):
            r_child = radius * (len(part) / len(idx)) ** (1.0 / 3.0)
            if r_child >= r_min:
                stack.append((end, part, r_child, depth + 1))
    return tubes


# ------------------------------------------------------------------------------------------ anatomy ---


@dataclass
class _NoduleSpec:
    nodule: Nodule
    center: np.ndarray
    radius: float
    hu_solid: float
    hu_ggo: float
    core_frac: float  # part-solid: core radius / radius
    lobe_dirs: np.ndarray  # (3, 3) unit vectors of the lobulation
    lobe_amp: float

    def surface_radius(self, nx, ny, nz):
        """Radius of the (slightly lobulated) surface in the directions (nx, ny, nz); mean over the
        sphere equals ``radius``, so the volume stays that of the nominal sphere to within a few %."""
        bumps = 0.0
        for w in self.lobe_dirs:
            c = nx * w[0] + ny * w[1] + nz * w[2]
            bumps = bumps + (c * c - 1.0 / 3.0)
        return self.radius * (1.0 + self.lobe_amp * bumps / len(self.lobe_dirs))

    def signed(self, x, y, z, radius_scale: float = 1.0):
        dx, dy, dz = x - self.center[0], y - self.center[1], z - self.center[2]
        d = np.sqrt(dx * dx + dy * dy + dz * dz)
        inv = 1.0 / np.maximum(d, 1e-6)
        return d - radius_scale * self.surface_radius(dx * inv, dy * inv, dz * inv)


class Anatomy:
    """The patient of a phantom: every structure in LPS world millimetres, independent of any voxel grid.

    Built by :func:`make_anatomy` (the phantom makers call it); rendering it on different grids gives
    co-registered CT, PET and MR images of one patient. Attributes of interest: ``nodules`` (list of
    :class:`Nodule`), ``box_lo``/``box_hi`` (the world box it fills), ``lungs`` ("both", "left", "right" or
    "none"), ``contrast`` (whether the CT is contrast-enhanced).
    """

    def __init__(
        self,
        rng: np.random.Generator,
        box_lo: np.ndarray,
        box_hi: np.ndarray,
        lungs: str,
        contrast: bool,
        voxel_mm: Sequence[float],
    ) -> None:
        self.box_lo = np.asarray(box_lo, dtype=float)
        self.box_hi = np.asarray(box_hi, dtype=float)
        self.lungs = lungs
        self.contrast = bool(contrast)
        self.chest = lungs != "none"
        self.seed = 0
        self.nodules: list[Nodule] = []
        self._nodule_specs: list[_NoduleSpec] = []
        self.vessels: list[_Tube] = []
        self.airway_tree: list[_Tube] = []
        self.fissures: list[tuple[str, np.ndarray, np.ndarray, tuple | None]] = []
        self._voxel = np.asarray(voxel_mm, dtype=float)
        self._min_voxel = float(min(self._voxel[0], self._voxel[1]))
        self._layout_body(rng)
        if self.chest:
            self._layout_chest(rng)
        else:
            self._layout_abdomen(rng, self.box_hi[2], self.box_hi[2] - self.box_lo[2])

    # ---- layout --------------------------------------------------------------------------------------

    def _layout_body(self, rng: np.random.Generator) -> None:
        lo, hi = self.box_lo, self.box_hi
        centre = 0.5 * (lo + hi)
        hx, hy = 0.5 * (hi[0] - lo[0]), 0.5 * (hi[1] - lo[1])
        a = hx * rng.uniform(0.80, 0.90)
        # z frame of the macro anatomy: the chest (upper abdomen to lung apices) is about 1.8 body
        # half-widths long. A slab up to 3 times longer is filled by a chest stretched in z (the body
        # only fills a ~10 cm field of view in a 128^3 volume at real in-plane spacing, so the lungs
        # would otherwise fill only a few slices); a longer one shows the abdomen below the chest;
        # a short one shows the middle of the chest.
        box_len = hi[2] - lo[2]
        if self.chest:
            real_len = 1.8 * a
            self.z_len = float(np.clip(box_len, 0.6 * real_len, 3.0 * real_len))
            self.z_lo = hi[2] - self.z_len + 0.45 * max(0.0, self.z_len - box_len)
        else:
            self.z_lo, self.z_len = lo[2], box_len
        ratio = rng.uniform(0.62, 0.74) if self.chest else rng.uniform(0.70, 0.82)
        # the body and the table must fit in y: leave room below the back for an air gap and the table
        gap = max(5.0 * self._min_voxel, 0.05 * a)
        table_t = max(6 * self._min_voxel, 0.09 * a)
        b = min(a * ratio, 0.5 * (2 * hy * 0.94 - gap - table_t))
        free = 2 * hy - 2 * b - gap - table_t
        by = lo[1] + free * rng.uniform(0.30, 0.45) + b
        self.a, self.b = a, b
        self.bx = centre[0] + hx * rng.uniform(-0.02, 0.02)
        self.by = by
        self.scale = a / _REAL_BODY_HALF_WIDTH_MM  # macro-anatomy mm per real mm
        self.p_ant = rng.uniform(2.0, 2.3)
        self.p_post = rng.uniform(2.7, 3.4)
        self.skin = max(0.8 * self._min_voxel, 2.0 * self.scale) / a
        self.fat = rng.uniform(0.035, 0.12)
        self.muscle = rng.uniform(0.05, 0.08)
        self.rib = 0.055
        # table: two carbon-fibre sheets around a foam core, curving up a little at the sides
        self.table_top = by + b + gap
        self.table_t = table_t
        self.table_sheet = max(1.2 * self._min_voxel, 0.012 * a)
        self.table_half_w = 0.95 * hx
        self.table_curve = rng.uniform(0.3, 0.6) * gap / (0.8 * a) ** 2
        # thoracic / abdominal cavity: inside fat, muscle and rib layers, with the back muscles thicker
        wall = self.fat + self.muscle + self.rib
        y_ant = by - b * (1 - wall)
        y_post = by + b * (1 - wall - rng.uniform(0.10, 0.16))
        self.cx = self.bx
        self.cy = 0.5 * (y_ant + y_post)
        self.ac = a * (1 - wall)
        self.bc = 0.5 * (y_post - y_ant)
        # spine, at the back of the cavity
        self.r_vb = 0.105 * a
        self.spine_x = self.bx
        self.spine_y = self.cy + self.bc - 0.45 * self.r_vb
        self.vert_period = rng.uniform(0.075, 0.09)
        self.vert_phase = rng.uniform(0, 1)
        self.rib_period = self.vert_period
        self.rib_phase = self.vert_phase + 0.5
        self.rib_drop = rng.uniform(2.6, 3.4) * self.rib_period
        self.rib_width = rng.uniform(0.28, 0.36)
        self.xm = self.cx + 0.02 * self.ac  # mediastinal midline, slightly left
        # descending aorta, left and in front of the vertebral body; inferior vena cava on the right
        self.r_aorta = 0.08 * a
        self.desc_aorta_xy = np.array([self.spine_x + 1.05 * self.r_vb, self.spine_y - 1.05 * self.r_vb])
        self.r_es = 0.035 * a
        self.es_xy = np.array([self.spine_x + 0.35 * self.r_vb, self.spine_y - 1.25 * self.r_vb - self.r_es])

    def _t_to_z(self, t: float) -> float:
        return float(self.z_lo + t * self.z_len)

    def _pt(self, x: float, y: float, t: float) -> np.ndarray:
        return np.array([x, y, self._t_to_z(t)])

    def _layout_chest(self, rng: np.random.Generator) -> None:
        ac, bc, cx, cy = self.ac, self.bc, self.cx, self.cy
        self.t_dome = {"right": rng.uniform(0.13, 0.22)}
        self.t_dome["left"] = self.t_dome["right"] - rng.uniform(0.01, 0.04)
        self.dome_h = rng.uniform(0.10, 0.15)
        self.t_top = rng.uniform(0.97, 1.08)
        self.t_apex0 = self.t_top - rng.uniform(0.28, 0.36)
        self.wm = rng.uniform(0.13, 0.17) * ac
        self.med_phase = rng.uniform(0, 2 * np.pi, size=2)
        # each lung's centre line in x and half width, for the diaphragm domes and apices
        self.lung_x = {
            "right": 0.5 * (cx - ac + self.xm - self.wm),
            "left": 0.5 * (cx + ac + self.xm + self.wm),
        }
        self.lung_hw = {
            "right": 0.5 * (self.xm - self.wm - (cx - ac)),
            "left": 0.5 * (cx + ac - self.xm - self.wm),
        }
        t_car = (
            self.t_dome["right"]
            + 0.5 * (min(self.t_top, 1.0) - self.t_dome["right"])
            + rng.uniform(-0.03, 0.03)
        )
        self.t_carina = t_car
        # heart: an ellipsoid sitting on the diaphragm, anterior and to the left
        self.heart_c = np.array([self.xm + 0.2 * ac, cy - 0.22 * bc, self._t_to_z(self.t_dome["left"] + 0.1)])
        self.heart_r = np.array([0.36 * ac, 0.5 * bc, 0.16 * self.z_len]) * rng.uniform(0.92, 1.08)
        # left ventricle inside it (left, posterior, low): its wall is the myocardium
        self.lv_c = self.heart_c + np.array([0.25, 0.1, -0.15]) * self.heart_r
        self.lv_r = 0.5 * self.heart_r
        t_heart_top = self.t_dome["left"] + 0.1 + 0.17
        t_arch = min(t_car + 0.1, 0.95)
        ra = self.r_aorta
        dax, day = self.desc_aorta_xy
        self.great_vessels: list[_Tube] = [
            # ascending aorta, arch, descending aorta down through the diaphragm
            _Tube(self._pt(self.xm - 0.02 * ac, cy - 0.18 * bc, t_heart_top - 0.1), self._pt(self.xm - 0.06 * ac, cy - 0.28 * bc, t_arch - 0.06), ra, ra),
            _Tube(self._pt(self.xm - 0.06 * ac, cy - 0.28 * bc, t_arch - 0.06), self._pt(self.xm + 0.02 * ac, cy - 0.05 * bc, t_arch), ra, ra),
            _Tube(self._pt(self.xm + 0.02 * ac, cy - 0.05 * bc, t_arch), self._pt(dax, day, t_arch - 0.07), ra, 0.9 * ra),
            _Tube(self._pt(dax, day, t_arch - 0.07), self._pt(dax, day, self.t_dome["left"] - 0.05), 0.9 * ra, 0.85 * ra),
            # superior vena cava, right of the ascending aorta
            _Tube(self._pt(self.xm - 0.2 * ac, cy - 0.2 * bc, t_heart_top - 0.06), self._pt(self.xm - 0.19 * ac, cy - 0.15 * bc, 1.2), 0.05 * self.a, 0.05 * self.a),
        ]  # fmt: skip
        # pulmonary trunk from the right ventricle up to its bifurcation, then to each hilum
        bif = self._pt(self.xm + 0.06 * ac, cy - 0.08 * bc, t_car - 0.03)
        self.great_vessels.append(
            _Tube(
                self._pt(self.xm + 0.15 * ac, cy - 0.38 * bc, t_heart_top - 0.08),
                bif,
                0.075 * self.a,
                0.07 * self.a,
            )
        )
        self.hilum: dict[str, np.ndarray] = {}
        self.hilum_low: dict[str, np.ndarray] = {}
        sides = [s for s in ("right", "left") if self.lungs in ("both", s)]
        for side in ("right", "left"):
            sign = -1.0 if side == "right" else 1.0
            hx = self.xm + sign * (self.wm + 0.1 * ac)
            self.hilum[side] = self._pt(hx, cy + 0.02 * bc, t_car - 0.05)
            self.hilum_low[side] = self._pt(hx - sign * 0.02 * ac, cy + 0.15 * bc, t_car - 0.14)
            if side in sides:
                self.great_vessels.append(
                    _Tube(
                        bif,
                        self.hilum[side] - sign * np.array([0.04 * ac, 0, 0]),
                        0.055 * self.a,
                        0.05 * self.a,
                    )
                )
        # trachea and main bronchi: air tubes with soft-tissue walls
        r_tr = 0.055 * self.a
        self.trachea_r = r_tr
        self.wall_frac = 0.18
        tx, ty = self.xm - 0.03 * ac, self.es_xy[1] - self.r_es - 1.15 * r_tr
        carina = self._pt(tx, ty + 0.1 * r_tr, t_car)
        self.airways: list[_Tube] = [
            _Tube(self._pt(tx, ty, 1.2), carina, r_tr, r_tr)
        ]  # trachea, main bronchi
        self.airway_roots: dict[str, tuple[np.ndarray, float]] = {}
        for side in sides:
            r_main = (0.72 if side == "right" else 0.65) * r_tr
            end = self.hilum[side] + np.array([0.0, 0.0, 0.02 * self.z_len])
            self.airways.append(_Tube(carina, end, r_main, 0.95 * r_main))
            self.airway_roots[side] = (end, 0.9 * r_main)
        self.sides = sides
        # interlobar fissures: an oblique one in each lung (from high at the back to low at the front)
        # and the horizontal fissure of the right lung, in front of the oblique one
        self.fissures = []
        for side in sides:
            p_post = self._pt(self.lung_x[side], cy + bc, self.t_apex0 - rng.uniform(0.0, 0.1))
            p_ant = self._pt(self.lung_x[side], cy - bc, self.t_dome[side] + rng.uniform(0.0, 0.06))
            # seen in an axial slice the fissure runs from posteromedial to anterolateral
            sign = -1.0 if side == "right" else 1.0
            swing = np.deg2rad(rng.uniform(15, 35))
            across = np.array([np.cos(swing), sign * np.sin(swing), rng.uniform(-0.1, 0.1)])
            normal = _unit(np.cross(p_ant - p_post, across))
            front = self._pt(self.lung_x[side], cy - bc, t_car)
            if normal @ (front - p_post) < 0:
                normal = -normal
            self.fissures.append((side, p_post, normal, None))
            if side == "right":
                p_h = self._pt(self.lung_x[side], cy, t_car - rng.uniform(0.03, 0.08))
                n_h = _unit(np.array([0.0, rng.uniform(-0.15, 0.15), 1.0]))
                self.fissures.append((side, p_h, n_h, (p_post, normal)))
        # the abdomen below the diaphragm, at the chest's scale
        self._layout_abdomen(rng, self._t_to_z(self.t_dome["right"] + 0.04), self.z_len)

    def _layout_abdomen(self, rng: np.random.Generator, z_top: float, length: float) -> None:
        """Abdominal organs in a frame whose top (``ta`` = 1) is the liver dome and whose bottom
        (``ta`` = 0) is the pelvis."""
        ac, bc, cx, cy = self.ac, self.bc, self.cx, self.cy
        self.abd_lo, self.abd_len = z_top - length, length

        def pa(x: float, y: float, ta: float) -> np.ndarray:
            return np.array([x, y, self.abd_lo + ta * length])

        self.liver_c, self.liver_r = (
            pa(cx - 0.3 * ac, cy - 0.05 * bc, 0.9),
            np.array([0.72 * ac, 0.95 * bc, 0.4 * length]),
        )
        self.spleen_c, self.spleen_r = (
            pa(cx + 0.62 * ac, cy + 0.35 * bc, 0.85),
            np.array([0.24 * ac, 0.4 * bc, 0.18 * length]),
        )
        self.stomach_c, self.stomach_r = (
            pa(cx + 0.35 * ac, cy - 0.35 * bc, 0.86),
            np.array([0.32 * ac, 0.35 * bc, 0.15 * length]),
        )
        self.kidney_c = [
            pa(self.spine_x + s * 2.2 * self.r_vb, self.spine_y - 0.2 * self.r_vb, 0.5) for s in (-1, 1)
        ]
        self.kidney_r = np.array([0.85 * self.r_vb, 1.1 * self.r_vb, 0.16 * length])
        self.bladder_c, self.bladder_r = (
            pa(cx, cy - 0.35 * bc, 0.04),
            np.array([0.3 * ac, 0.35 * bc, 0.1 * length]),
        )
        dax, day = self.desc_aorta_xy
        ivc_x = self.spine_x - 1.1 * self.r_vb
        top = self.box_hi[2] + 10.0 if not self.chest else z_top
        self.abd_vessels = [
            _Tube(pa(dax - 0.4 * self.r_vb, day, 0.15), np.array([dax - 0.4 * self.r_vb, day, top]), 0.065 * self.a, 0.07 * self.a),
            _Tube(pa(ivc_x, day, 0.15), np.array([ivc_x, day, top]), 0.06 * self.a, 0.06 * self.a),
        ]  # fmt: skip
        if not self.chest:
            self.sides = []
            self.great_vessels = []
            self.airways = []
            self.fissures = []
        # bowel loops: random walks through the anterior abdomen; some hold gas (with an air-fluid
        # level: gas rises anteriorly in a supine patient), the others fluid
        self.bowel: list[tuple[_Tube, float]] = []
        for _ in range(int(rng.integers(18, 28))):
            r = self.a * rng.uniform(0.06, 0.12)
            p = pa(cx + ac * rng.uniform(-0.6, 0.6), cy + bc * rng.uniform(-0.7, 0.2), rng.uniform(0.1, 0.62))
            level = (
                rng.uniform(-1.0, 1.0) if rng.random() < 0.55 else -2.0
            )  # fraction of the lumen that is gas
            direction = _unit(rng.standard_normal(3))
            for _ in range(int(rng.integers(3, 6))):
                direction = _unit(direction + 0.9 * rng.standard_normal(3))
                q = p + direction * r * rng.uniform(2.0, 4.0)
                q[0] = np.clip(q[0], cx - 0.75 * ac, cx + 0.75 * ac)
                q[1] = np.clip(q[1], cy - 0.8 * bc, cy + 0.35 * bc)
                q[2] = min(q[2], self.abd_lo + 0.65 * length)
                self.bowel.append((_Tube(p, q, r, r), level))
                p = q

    def _ta(self, z):
        return (z - self.abd_lo) * (1.0 / self.abd_len)

    # ---- analytic regions (broadcastable: open grids or flat point lists) ---------------------------

    def _t(self, z):
        return (z - self.z_lo) * (1.0 / self.z_len)

    def body_rho(self, x, y):
        u = np.abs((x - self.bx) * (1.0 / self.a))
        v = (y - self.by) * (1.0 / self.b)
        p = np.where(v > 0, self.p_post, self.p_ant)
        return (u**p + np.abs(v) ** p) ** (1.0 / p)

    def cavity_scale(self, t):
        # the upper thorax is narrower than its base
        if not self.chest:
            return np.ones_like(t)
        return 1.0 - 0.22 * np.clip((t - 0.55) / 0.45, 0.0, 1.0) ** 2

    def cavity_r2(self, x, y):
        u = (x - self.cx) * (1.0 / self.ac)
        v = (y - self.cy) * (1.0 / self.bc)
        return u * u + v * v

    def spine_zone(self, x, y):
        dx, dy = x - self.spine_x, y - self.spine_y
        near_body = dx * dx + dy * dy < (1.3 * self.r_vb) ** 2
        behind = (np.abs(dx) < 0.6 * self.r_vb) & (dy > 0)
        return near_body | behind

    def diaphragm_t(self, x, y, side: str):
        q = ((x - self.lung_x[side]) / (1.1 * self.lung_hw[side])) ** 2 + (
            (y - (self.cy - 0.1 * self.bc)) / self.bc
        ) ** 2
        return self.t_dome[side] - self.dome_h * q

    def apex_q(self, x, y, side: str):
        return (np.abs(x - self.lung_x[side]) / self.lung_hw[side]) ** 4 + (
            np.abs(y - self.cy) / (1.05 * self.bc)
        ) ** 4

    def apex_limit(self, t):
        tau = np.clip((t - self.t_apex0) / (self.t_top - self.t_apex0), 0.0, 1.0)
        return np.maximum(1.0 - tau * tau, 0.0) ** 2

    def heart_q(self, x, y, z, centre=None, radii=None, grow: float = 1.0):
        c = self.heart_c if centre is None else centre
        r = (self.heart_r if radii is None else radii) * grow
        return ((x - c[0]) / r[0]) ** 2 + ((y - c[1]) / r[1]) ** 2 + ((z - c[2]) / r[2]) ** 2

    def lung_points_mask(self, p: np.ndarray) -> np.ndarray:
        """Which of the LPS points (N, 3) lie in a lung (the same geometry as the rendered ``lungs``)."""
        x, y, z = p[:, 0], p[:, 1], p[:, 2]
        if not self.chest:
            return np.zeros(len(p), dtype=bool)
        t = self._t(z)
        out = self._lung_core(x, y, z, t, self.cavity_r2(x, y), self.cavity_scale(t))
        for tube in self._lung_exclusions():
            out &= tube.signed(x, y, z) > 0
        return out

    def _lung_core(self, x, y, z, t, cav_r2, cav_scale, sides: Sequence[str] | None = None):
        inside = cav_r2 <= cav_scale * cav_scale
        dx = x - self.xm
        # the mediastinum is widest in its middle third and narrows to the anterior junction line;
        # above the carina the great vessels widen it
        v = (y - self.cy) * (1.0 / self.bc)
        width = self.wm * (0.45 + 0.7 * np.exp(-(((v - 0.05) / 0.5) ** 2)))
        width = width * (1.0 + 0.15 * np.clip((t - self.t_carina) / 0.3, 0, 1))
        # mediastinal contours are never straight: a gentle random undulation
        p1, p2 = self.med_phase
        width = width * (
            1.0
            + 0.1 * np.sin(2 * np.pi * (1.3 * v + 2.1 * t) + p1)
            + 0.06 * np.sin(2 * np.pi * (2.7 * v - 1.7 * t) + p2)
        )
        band = np.abs(dx) < width
        inside = inside & ~band & ~self.spine_zone(x, y)
        inside = inside & (self.heart_q(x, y, z, grow=1.08) > 1.0)
        side_ok = np.zeros(np.broadcast_shapes(np.shape(inside)), dtype=bool)
        for side in self.sides if sides is None else sides:
            on_side = (dx < 0) if side == "right" else (dx >= 0)
            ok = (
                on_side & (t > self.diaphragm_t(x, y, side)) & (self.apex_q(x, y, side) <= self.apex_limit(t))
            )
            side_ok = side_ok | ok
        return inside & side_ok

    def _lung_exclusions(self) -> list[_Tube]:
        grow = 0.04 * self.a
        tubes = [_Tube(t.p0, t.p1, t.r0 + grow, t.r1 + grow) for t in self.great_vessels]
        tubes += [
            _Tube(t.p0, t.p1, t.r0 * (1 + self.wall_frac) + grow, t.r1 * (1 + self.wall_frac) + grow)
            for t in self.airways
        ]
        return tubes

    # ---- trees and nodules ---------------------------------------------------------------------------

    def sample_lung_points(
        self, rng: np.random.Generator, n: int, side: str | None = None, in_box: bool = False
    ) -> np.ndarray:
        """Up to ``n`` random points in the lungs (one side, or only those inside the image box)."""
        lo = np.array([self.cx - self.ac, self.cy - self.bc, self.z_lo])
        hi = np.array([self.cx + self.ac, self.cy + self.bc, self.z_lo + self.z_len * min(self.t_top, 1.0)])
        if in_box:
            lo[2], hi[2] = max(lo[2], self.box_lo[2]), min(hi[2], self.box_hi[2])
        if side == "right":
            hi[0] = self.xm
        elif side == "left":
            lo[0] = self.xm
        pts = np.empty((0, 3))
        for _ in range(30):
            cand = rng.uniform(lo, hi, size=(4 * n, 3))
            pts = np.concatenate([pts, cand[self.lung_points_mask(cand)]])
            if len(pts) >= n:
                break
        return pts[:n]

    def grow_trees(self, rng: np.random.Generator) -> None:
        self.vessels = []
        self.airway_tree = []
        if not self.chest:
            return
        h = self._min_voxel
        r_vessel_min = max(0.3, 0.4 * h)
        for side in self.sides:
            n_pts = 1500
            for root in (self.hilum[side], self.hilum_low[side]):
                pts = self.sample_lung_points(rng, n_pts, side)
                if len(pts) < 20:
                    continue
                r0 = min(0.045 * self.a, 0.18 * self.lung_hw[side])
                self.vessels += _grow_tree(rng, pts, root, r0, r_vessel_min)
            root, r0 = self.airway_roots[side]
            pts = self.sample_lung_points(rng, 600, side)
            if len(pts) >= 20:
                r_air_min = max(0.6, 1.1 * h)
                self.airway_tree += _grow_tree(rng, pts, root, r0, r_air_min, length_frac=0.4)

    def place_nodules(
        self,
        rng: np.random.Generator,
        kinds: Sequence[str],
        diameter_range: tuple[float, float],
        snap: _Grid,
    ) -> None:
        if not kinds:
            return
        if not self.chest:
            raise ValueError("nodules need lungs: a phantom with lungs='none' cannot hold nodules")
        h = self._min_voxel
        pool = self.sample_lung_points(rng, 4000, in_box=True)
        if len(pool) == 0:
            raise ValueError("this field of view holds no lung to put a nodule in")
        sizes = {s: self.lung_hw[s] for s in self.sides}
        box_z = self.box_hi[2] - self.box_lo[2]
        d_fit = 0.9 * min(min(sizes.values()), 0.5 * self.bc, 0.2 * self.z_len, 0.6 * box_z)
        d_min = 2.0 * h  # a nodule spans at least two voxels in-plane
        if d_fit < d_min:
            raise ValueError(
                f"the lungs of this field of view ({self.box_hi[0] - self.box_lo[0]:.0f} mm wide) are too small "
                "for a nodule of two voxels; use more voxels or a larger spacing"
            )
        big_vessels = [v for v in self.vessels if v.r0 >= max(0.6, 0.7 * h)]
        for kind in kinds:
            # a part-solid nodule has a visible solid core and a ground-glass rim: it is seldom under
            # 6 mm; pure ground glass seldom under 5 mm. The range is cut to what fits in these lungs.
            hi_d = max(min(diameter_range[1], d_fit), d_min)
            lo_d = min(
                max(diameter_range[0], {"part_solid": 6.0, "ground_glass": 5.0}.get(kind, 0.0), d_min), hi_d
            )
            d = float(np.exp(rng.uniform(np.log(lo_d), np.log(hi_d))))
            for attempt in range(10):
                # last resort in a tiny field of view: let a juxtavascular nodule touch a thin vessel
                vessels = big_vessels if attempt < 8 or kind != "juxtavascular" else self.vessels
                spec = self._try_place(rng, kind, 0.5 * d, pool, vessels, snap)
                if spec is not None:
                    break
                d = max(0.85 * d, d_min)
            else:
                raise ValueError(
                    f"could not fit a {kind} nodule in the lungs of this phantom (field of view too small?)"
                )
            self._nodule_specs.append(spec)
            self.nodules.append(spec.nodule)

    def _fits(self, centre: np.ndarray, radius: float, margin, dirs: np.ndarray = _DIRS26) -> bool:
        # margin: mm, or mm per axis (a voxel-based margin on an anisotropic grid)
        probe = np.concatenate([centre[None], centre + radius * dirs + np.asarray(margin) * dirs])
        return bool(self.lung_points_mask(probe).all())

    def _clear_of_nodules(self, centre: np.ndarray, radius: float, margin: float) -> bool:
        for s in self._nodule_specs:
            if np.linalg.norm(s.center - centre) < s.radius * (1 + 0.15) + radius * 1.15 + margin:
                return False
        return True

    def _clear_of_vessels(self, centre: np.ndarray, radius: float, vessels: list[_Tube]) -> bool:
        for v in vessels:
            if v.signed(*centre, grow=radius) < 0:
                return False
        return True

    def _try_place(self, rng, kind, radius, pool, big_vessels, snap: _Grid) -> _NoduleSpec | None:
        h = self._min_voxel
        margin = max(1.5 * h, 0.5)
        # intrapulmonary kinds keep a voxel and a half of lung around them along every axis
        clear = np.maximum(1.5 * self._voxel, 0.5)
        for attempt in range(60):
            if attempt == 40:
                clear = 0.6 * self._voxel  # a crowded or tiny lung: settle for less
            p = pool[rng.integers(len(pool))]
            if kind == "juxtapleural":
                centre = self._juxtapleural_centre(rng, p, radius)
            elif kind == "juxtavascular":
                centre = self._juxtavascular_centre(rng, radius, big_vessels)
            else:
                centre = p
            if centre is None:
                continue
            centre = _snap(centre, snap)
            if np.any(centre - radius < self.box_lo) or np.any(centre + radius > self.box_hi):
                continue  # the whole nodule must be in the image
            if not self._clear_of_nodules(centre, radius, margin):
                continue
            if kind in ("solid", "part_solid", "ground_glass"):
                if not self._fits(centre, 1.1 * radius, clear):
                    continue
                if not self._clear_of_vessels(
                    centre, radius + margin, [v for v in big_vessels if v.r0 > 1.5 * h]
                ):
                    continue
            elif kind == "juxtavascular":
                if not self._fits(centre, 1.1 * radius, clear):
                    continue
            return self._nodule_spec(rng, kind, centre, radius)
        return None

    def _juxtapleural_centre(self, rng, p: np.ndarray, radius: float) -> np.ndarray | None:
        # march outwards (away from the mediastinum, in the axial plane) to the costal pleura
        outward = _unit(np.array([p[0] - self.xm, (p[1] - self.cy) * rng.uniform(0.3, 1.5), 0.0]))
        step = 0.5 * self._min_voxel
        n_steps = int(2 * self.ac / step) + 2
        ray = p[None] + step * np.arange(n_steps)[:, None] * outward[None]
        inside = self.lung_points_mask(ray)
        if not inside[0] or inside.all():
            return None
        boundary = ray[int(np.argmin(inside)) - 1]
        # must be the chest wall there, not mediastinum or diaphragm
        beyond = boundary + 3 * step * outward
        t = self._t(beyond[2])
        if self.cavity_r2(beyond[0], beyond[1]) < (0.93 * self.cavity_scale(t)) ** 2:
            return None
        # inward normal: mean direction to the lung points around the boundary point
        probe = boundary + 3 * step * _DIRS26
        ins = self.lung_points_mask(probe)
        if ins.sum() < 3:
            return None
        normal = _unit(_DIRS26[ins].mean(axis=0))
        centre = boundary + normal * 0.85 * radius
        # most of it in the lung, and its outer side against the wall
        inner = _DIRS26[_DIRS26 @ normal > 0.2]
        if not self.lung_points_mask(centre[None] + 0.95 * radius * inner).all():
            return None
        if self.lung_points_mask((centre + 1.2 * radius * -normal)[None])[0]:
            return None
        return centre

    def _juxtavascular_centre(self, rng, radius: float, vessels: list[_Tube]) -> np.ndarray | None:
        if not vessels:
            return None
        v = vessels[rng.integers(len(vessels))]
        s = rng.uniform(0.2, 0.8)
        q = v.p0 + s * (v.p1 - v.p0)
        axis = _unit(v.p1 - v.p0)
        e = _unit(np.cross(axis, rng.standard_normal(3)))
        r_v = v.r0 + s * (v.r1 - v.r0)
        # touching: the sphere overlaps the vessel wall by a fraction of a voxel
        return q + e * (r_v + 0.9 * radius)

    def _nodule_spec(self, rng, kind: str, centre: np.ndarray, radius: float) -> _NoduleSpec:
        nodule = Nodule(tuple(float(c) for c in centre), float(round(2 * radius, 4)), kind)
        lobe = rng.standard_normal((3, 3))
        lobe /= np.linalg.norm(lobe, axis=1, keepdims=True)
        return _NoduleSpec(
            nodule=nodule,
            center=np.asarray(centre, dtype=float),
            radius=float(round(2 * radius, 4)) / 2,
            hu_solid=float(rng.uniform(0, 70)),
            hu_ggo=float(rng.uniform(-620, -420)),
            core_frac=float(rng.uniform(0.45, 0.65)),
            lobe_dirs=lobe,
            lobe_amp=float(rng.uniform(0.0, 0.15)) if kind != "ground_glass" else 0.1,
        )

    # ---- rendering -----------------------------------------------------------------------------------

    def render(self, grid: _Grid) -> _Rendered:
        """Rasterise the anatomy on a grid: tissue map, partial-volume fractions and ground truth."""
        return _render(self, grid)


def _snap(centre: np.ndarray, grid: _Grid) -> np.ndarray:
    idx = np.round((centre - np.asarray(grid.origin)) / np.asarray(grid.spacing))
    idx = np.clip(idx, 0, np.asarray(grid.shape) - 1)
    return np.asarray(grid.origin) + idx * np.asarray(grid.spacing)


@dataclass
class _Rendered:
    tissues: np.ndarray  # uint8
    lungs: np.ndarray  # bool
    nodule_labels: np.ndarray  # uint8
    vessel_frac: np.ndarray  # float32, lung vessels
    airway_outer: np.ndarray  # float32, airway lumen + wall
    airway_lumen: np.ndarray  # float32
    nodule_frac: list[
        tuple[tuple[slice, slice, slice], np.ndarray, np.ndarray | None]
    ]  # per nodule: (sl, frac, core frac)
    fissure_frac: np.ndarray  # float32
    t: np.ndarray  # (1, 1, Z) relative height
    y: np.ndarray  # (1, Y, 1) world y


def _render(an: Anatomy, grid: _Grid) -> _Rendered:
    x, y, z = grid.open_coords()
    t = an._t(z)
    shape = grid.shape
    h = grid.soft_width
    tissues = np.zeros(shape, dtype=np.uint8)

    # patient table: two curved carbon-fibre sheets around foam
    x2 = x[:, 0, 0]
    y1 = y[0, :, 0]
    top = an.table_top - an.table_curve * (x2 - an.bx) ** 2
    depth = y1[None, :] - top[:, None]
    across = np.abs(x2 - an.bx)[:, None] <= an.table_half_w
    table2d = np.zeros(shape[:2], dtype=np.uint8)
    table2d[across & (depth >= 0) & (depth < an.table_t)] = _T["table_foam"]
    table2d[across & (depth >= 0) & (depth < an.table_sheet)] = _T["table"]
    table2d[across & (depth >= an.table_t - an.table_sheet) & (depth < an.table_t)] = _T["table"]
    tissues[:] = table2d[:, :, None]

    # body wall: skin, subcutaneous fat, muscle
    rho = an.body_rho(x, y)  # (X, Y, 1)
    plane = np.full(shape[:2], _T["air"], dtype=np.uint8)
    plane[rho[:, :, 0] <= 1.0] = _T["skin"]
    plane[rho[:, :, 0] <= 1.0 - an.skin] = _T["fat"]
    plane[rho[:, :, 0] <= 1.0 - an.skin - an.fat] = _T["muscle"]
    body2d = rho[:, :, 0] <= 1.0
    np.copyto(tissues, plane[:, :, None], where=body2d[:, :, None])

    # rib cage ring (ribs, costal cartilage, sternum) and the cavity inside it
    cav_r2 = an.cavity_r2(x, y)  # (X, Y, 1)
    cav_s = an.cavity_scale(t)  # (1, 1, Z)
    cavity = cav_r2 <= cav_s * cav_s
    ring = ~cavity & (cav_r2 <= (cav_s * (1 + an.rib)) ** 2)
    ta = an._ta(z)
    _paint_ribs(an, tissues, ring & (ta > 0.72), x, y, t, cav_r2, cav_s)
    _paint_pelvis(an, tissues, ring & (ta < 0.25), x, y)
    np.copyto(tissues, np.uint8(_T["fat"]), where=cavity)

    lungs = np.zeros(shape, dtype=bool)
    if an.chest:
        dia = np.where(x < an.xm, an.diaphragm_t(x, y, "right"), an.diaphragm_t(x, y, "left"))
        _paint_abdomen(an, grid, tissues, cavity & (t <= dia), x, y, z, t, dia)
        core = an._lung_core(x, y, z, t, cav_r2, cav_s)
        for tube in an._lung_exclusions():
            sl = grid.bbox(*tube.lo_hi(0.0))
            if sl is None:
                continue
            lx, ly, lz = grid.local_coords(sl)
            core[sl] &= tube.signed(lx, ly, lz) > 0
        lungs = core
        # a missing lung leaves its pleural space filled with fluid (as after a pneumonectomy)
        if an.lungs in ("left", "right"):
            other = "left" if an.lungs == "right" else "right"
            missing = an._lung_core(x, y, z, t, cav_r2, cav_s, sides=[other])
            np.copyto(tissues, np.uint8(_T["fluid"]), where=missing)
        np.copyto(tissues, np.uint8(_T["lung"]), where=lungs)
        _paint_heart(an, grid, tissues)
    else:
        _paint_abdomen(an, grid, tissues, cavity, x, y, z, t)

    for tube in an.great_vessels:
        _paint_tube(tissues, grid, tube, _T["blood"])
    for tube in an.abd_vessels:  # the aorta and cava pass behind the lung bases
        _paint_tube(tissues, grid, tube, _T["blood"], where=~lungs)
    _paint_spine(an, grid, tissues, x, y, t, lungs)
    if an.chest:
        oesophagus = _Tube(
            np.array([*an.es_xy, an._t_to_z(an.t_dome["left"])]),
            np.array([*an.es_xy, an._t_to_z(1.2)]),
            an.r_es,
            an.r_es,
        )
        _paint_tube(tissues, grid, oesophagus, _T["muscle"])

    # interlobar fissures: thin pleural sheets, a faint line in the lung
    fissure = np.zeros(shape, dtype=np.float32)
    for side, p0, normal, restrict in an.fissures:
        dist = (x - p0[0]) * normal[0] + (y - p0[1]) * normal[1] + (z - p0[2]) * normal[2]
        near = (np.abs(dist) < 0.8 * h) & lungs & ((x < an.xm) if side == "right" else (x >= an.xm))
        if restrict is not None:
            pr, nr = restrict
            near &= (x - pr[0]) * nr[0] + (y - pr[1]) * nr[1] + (z - pr[2]) * nr[2] > 0
        ii, jj, kk = np.nonzero(near)
        fissure[ii, jj, kk] = np.maximum(fissure[ii, jj, kk], 1.0 - np.abs(dist[ii, jj, kk]) / (0.8 * h))

    # airways: wall and lumen as partial-volume fractions, so that thin walls still show
    airway_outer = np.zeros(shape, dtype=np.float32)
    airway_lumen = np.zeros(shape, dtype=np.float32)
    for tube in an.airways + an.airway_tree:
        outer = _Tube(
            tube.p0,
            tube.p1,
            tube.r0 * (1 + an.wall_frac) + 0.3 * grid.soft_width,
            tube.r1 * (1 + an.wall_frac) + 0.3 * grid.soft_width,
        )
        sl, frac = _tube_fraction(grid, outer)
        if sl is None:
            continue
        np.maximum(airway_outer[sl], frac, out=airway_outer[sl])
        sl, frac = _tube_fraction(grid, tube)
        if sl is not None:
            np.maximum(airway_lumen[sl], frac, out=airway_lumen[sl])
    np.copyto(tissues, np.uint8(_T["airway_wall"]), where=airway_outer >= 0.5)
    np.copyto(tissues, np.uint8(_T["airway"]), where=airway_lumen >= 0.5)

    # lung vessels, drawn only inside the lungs
    vessel_frac = np.zeros(shape, dtype=np.float32)
    for tube in an.vessels:
        sl, frac = _tube_fraction(grid, tube)
        if sl is None:
            continue
        frac *= lungs[sl]
        np.maximum(vessel_frac[sl], frac, out=vessel_frac[sl])
    np.copyto(tissues, np.uint8(_T["vessel"]), where=(vessel_frac >= 0.5) & (airway_outer < 0.5))

    # nodules
    labels = np.zeros(shape, dtype=np.uint8)
    nodule_frac = []
    for n, spec in enumerate(an._nodule_specs, start=1):
        r_max = spec.radius * (1 + spec.lobe_amp) + h
        sl = grid.bbox(spec.center - r_max, spec.center + r_max)
        if sl is None:
            nodule_frac.append((None, None, None))
            continue
        lx, ly, lz = grid.local_coords(sl)
        sd = spec.signed(lx, ly, lz)
        frac = np.clip(0.5 - sd / h, 0, 1).astype(np.float32)
        core = None
        if spec.nodule.kind == "part_solid":
            core = np.clip(0.5 - spec.signed(lx, ly, lz, spec.core_frac) / h, 0, 1).astype(np.float32)
        inside = sd <= 0
        np.copyto(labels[sl], np.uint8(n), where=inside)
        np.copyto(tissues[sl], np.uint8(_T["nodule"]), where=inside)
        lungs[sl] |= inside
        nodule_frac.append((sl, frac, core))

    return _Rendered(
        tissues, lungs, labels, vessel_frac, airway_outer, airway_lumen, nodule_frac, fissure, t, y
    )


def _paint_ribs(an: Anatomy, tissues, ring, x, y, t, cav_r2, cav_s) -> None:
    ii, jj, kk = np.nonzero(ring)
    xs, ys, ts = x[ii, 0, 0], y[0, jj, 0], t[0, 0, kk]
    u = (xs - an.cx) / an.ac
    v = (ys - an.cy) / an.bc
    r = np.sqrt(u * u + v * v)
    alpha = np.arccos(np.clip(v / np.maximum(r, 1e-6), -1, 1))  # 0 at the back, pi at the front
    # ribs run obliquely: a rib's front end lies lower than its back end
    phase = (ts + an.rib_drop * alpha / np.pi) / an.rib_period + an.rib_phase
    pos = phase - np.floor(phase)
    in_rib = (pos < an.rib_width) & (alpha > 0.28)
    radial = (r / cav_s[0, 0, kk] - 1.0) / an.rib
    edge = np.maximum(np.abs(2 * radial - 1), np.abs(2 * pos / an.rib_width - 1))
    code = np.where(edge > 0.55, _T["cortical_bone"], _T["marrow"]).astype(np.uint8)
    anterior = alpha > 0.84 * np.pi
    code = np.where(anterior, np.uint8(_T["cartilage"]), code)
    if an.chest:
        t_sternum = an.t_dome["left"] - 0.03
        sternum = (np.abs(xs - an.cx) < 0.09 * an.a) & (v < 0) & (ts > t_sternum)
        sternum &= radial < 1.4
        in_rib = in_rib | sternum
        code = np.where(sternum, np.where(edge > 0.7, _T["cortical_bone"], _T["marrow"]), code).astype(
            np.uint8
        )
    tissues[ii[in_rib], jj[in_rib], kk[in_rib]] = code[in_rib]


def _paint_pelvis(an: Anatomy, tissues, ring, x, y) -> None:
    # iliac wings: curved bone plates at the back and sides of the lowest abdominal slices
    ii, jj, kk = np.nonzero(ring)
    if len(ii) == 0:
        return
    u = (x[ii, 0, 0] - an.cx) / an.ac
    v = (y[0, jj, 0] - an.cy) / an.bc
    alpha = np.arccos(np.clip(v / np.maximum(np.sqrt(u * u + v * v), 1e-6), -1, 1))
    wing = (alpha > 0.35) & (alpha < 1.6)
    tissues[ii[wing], jj[wing], kk[wing]] = _T["cortical_bone"]


def _ellipsoid_q(x, y, z, c, r):
    return ((x - c[0]) / r[0]) ** 2 + ((y - c[1]) / r[1]) ** 2 + ((z - c[2]) / r[2]) ** 2


def _paint_ellipsoid(
    tissues, grid: _Grid, c, r, code: int, where: np.ndarray, scale: float = 1.0, extra=None
) -> None:
    r = np.asarray(r) * scale
    sl = grid.bbox(np.asarray(c) - r, np.asarray(c) + r)
    if sl is None:
        return
    lx, ly, lz = grid.local_coords(sl)
    inside = (_ellipsoid_q(lx, ly, lz, c, r) <= 1) & where[sl]
    if extra is not None:
        inside &= extra(lx, ly, lz)
    np.copyto(tissues[sl], np.uint8(code), where=inside)


def _paint_abdomen(an: Anatomy, grid: _Grid, tissues, region, x, y, z, t, dia=None) -> None:
    """Abdominal organs inside ``region`` (the abdominal cavity, or the part of the thoracic cavity
    below the diaphragm when ``dia`` gives the diaphragm's height)."""
    inner = region
    if dia is not None:
        # a thin muscular diaphragm under the lung bases; under the right dome, liver
        thick = max(1.2 * an._voxel[2], 3.0 * an.scale) / an.z_len
        np.copyto(tissues, np.uint8(_T["muscle"]), where=region)
        inner = region & (t <= dia - thick)
        np.copyto(tissues, np.uint8(_T["fat"]), where=inner)
        dome = inner & (an._ta(z) > 0.78) & (x < an.xm + 0.25 * an.ac - 0.2 * (y - an.cy))
        np.copyto(tissues, np.uint8(_T["liver"]), where=dome)
    ta = an._ta(z)
    # psoas muscles beside the lumbar spine, thicker further down
    if ta.min() < 0.7:
        for s in (-1, 1):
            c = np.array([an.spine_x + s * 1.6 * an.r_vb, an.spine_y - 0.1 * an.r_vb])
            r = an.r_vb * (0.5 + 0.6 * np.clip(1 - ta, 0, 1)) * (ta < 0.7)
            np.copyto(
                tissues, np.uint8(_T["muscle"]), where=inner & ((x - c[0]) ** 2 + (y - c[1]) ** 2 <= r * r)
            )
    _paint_ellipsoid(tissues, grid, an.liver_c, an.liver_r, _T["liver"], inner)
    _paint_ellipsoid(tissues, grid, an.spleen_c, an.spleen_r, _T["spleen"], inner)
    for kc in an.kidney_c:
        _paint_ellipsoid(tissues, grid, kc, an.kidney_r, _T["kidney"], inner)
        sinus_c = kc + np.array(
            [-np.sign(kc[0] - an.spine_x) * 0.35 * an.kidney_r[0], -0.1 * an.kidney_r[1], 0]
        )
        _paint_ellipsoid(tissues, grid, sinus_c, an.kidney_r, _T["fat"], inner, scale=0.45)
    # stomach with a gas cap anteriorly, where gas rises in a supine patient
    _paint_ellipsoid(tissues, grid, an.stomach_c, an.stomach_r, _T["bowel"], inner)
    level = an.stomach_c[1] - 0.3 * an.stomach_r[1]
    _paint_ellipsoid(
        tissues, grid, an.stomach_c, an.stomach_r, _T["gas"], inner, 0.8, lambda lx, ly, lz: ly < level
    )
    _paint_ellipsoid(tissues, grid, an.bladder_c, an.bladder_r, _T["bladder"], inner)
    for tube, gas_level in an.bowel:
        sl = grid.bbox(*tube.lo_hi(0.0))
        if sl is None:
            continue
        lx, ly, lz = grid.local_coords(sl)
        wall = (tube.signed(lx, ly, lz) <= 0) & inner[sl]
        np.copyto(tissues[sl], np.uint8(_T["bowel"]), where=wall)
        lumen = (tube.signed(lx, ly, lz, grow=-max(0.15 * tube.r0, 0.6 * grid.soft_width)) <= 0) & wall
        np.copyto(tissues[sl], np.uint8(_T["fluid"]), where=lumen)
        if gas_level > -1.5:
            # gas above the air-fluid level (anterior = smaller y)
            _, s_along = _segment_distance(lx, ly, lz, tube.p0, tube.p1)
            axis_y = tube.p0[1] + s_along * (tube.p1[1] - tube.p0[1])
            np.copyto(tissues[sl], np.uint8(_T["gas"]), where=lumen & (ly - axis_y < gas_level * tube.r0))


def _paint_heart(an: Anatomy, grid: _Grid, tissues) -> None:
    r_max = an.heart_r.max() * 1.1
    sl = grid.bbox(an.heart_c - r_max, an.heart_c + r_max)
    if sl is None:
        return
    lx, ly, lz = grid.local_coords(sl)
    heart = an.heart_q(lx, ly, lz) <= 1
    sub = tissues[sl]
    np.copyto(sub, np.uint8(_T["blood"]), where=heart)
    lv_wall = heart & (an.heart_q(lx, ly, lz, an.lv_c, an.lv_r * 1.45) <= 1)
    np.copyto(sub, np.uint8(_T["myocardium"]), where=lv_wall)
    np.copyto(sub, np.uint8(_T["blood"]), where=an.heart_q(lx, ly, lz, an.lv_c, an.lv_r) <= 1)


def _paint_spine(an: Anatomy, grid: _Grid, tissues, x, y, t, lungs) -> None:
    # vertebral bodies separated by discs, the spinal canal with its bony arch, and the spinous and
    # transverse processes
    nz = tissues.shape[2]
    phase = (t[0, 0] / an.vert_period + an.vert_phase) % 1.0
    vertebra = phase > 0.2  # (Z,)
    r_vb, sx, sy = an.r_vb, an.spine_x, an.spine_y
    pad = 3.5 * r_vb
    sl = grid.bbox(
        np.array([sx - pad, sy - 1.2 * r_vb, grid.box_lo[2]]),
        np.array([sx + pad, sy + 3.2 * r_vb, grid.box_hi[2]]),
    )
    if sl is None:
        return
    lx, ly, _ = grid.local_coords(sl)
    dx, dy = lx[:, :, 0] - sx, ly[:, :, 0] - sy  # (X', Y')
    d = np.sqrt(dx * dx + dy * dy)
    canal_c = sy + r_vb + 0.55 * r_vb
    r_canal = 0.5 * r_vb
    dc = np.sqrt(dx * dx + (ly[:, :, 0] - canal_c) ** 2)
    thin = max(0.1 * r_vb, 0.6 * grid.soft_width)
    body_cortex = (d <= r_vb) & (d > r_vb - thin)
    body_inner = d <= r_vb
    arch = (dc <= r_canal + max(0.22 * r_vb, grid.soft_width)) & (dc > r_canal)
    canal = dc <= r_canal
    spinous = (
        (np.abs(dx) < max(0.12 * r_vb, 0.6 * grid.soft_width))
        & (ly[:, :, 0] > canal_c)
        & (ly[:, :, 0] < canal_c + 1.5 * r_vb)
    )
    along = np.abs(dx) * 0.85 - (ly[:, :, 0] - canal_c) * 0.5  # along the transverse processes
    across = np.abs(dx) * 0.5 + (ly[:, :, 0] - canal_c) * 0.85
    transverse = (
        (along > 0) & (along < 1.8 * r_vb) & (np.abs(across) < max(0.14 * r_vb, 0.6 * grid.soft_width))
    )
    sub = tissues[sl]
    lung_sub = lungs[sl]
    for k in range(nz):
        s2 = sub[:, :, k]
        free = ~lung_sub[:, :, k]  # the transverse processes stay behind the pleura
        if vertebra[k]:
            s2[body_inner & free] = _T["marrow"]
            s2[body_cortex & free] = _T["cortical_bone"]
            s2[(arch | spinous | transverse) & free] = _T["cortical_bone"]
        else:
            s2[body_inner & free] = _T["cartilage"]  # intervertebral disc
            s2[arch & free] = _T["muscle"]  # ligaments between the arches
        s2[canal] = _T["csf"]


# ---------------------------------------------------------------------------------------- modalities ---


def _ct_lut(rng: np.random.Generator, contrast: bool) -> np.ndarray:
    hu = dict(_CT_HU)
    if contrast:
        hu.update({k: v * rng.uniform(0.85, 1.15) for k, v in _CT_HU_CONTRAST.items()})
    lut = np.zeros(_N_TISSUES, dtype=np.float32)
    for name, code in TISSUES.items():
        value = hu[name]
        if name not in ("air", "airway", "gas", "table", "table_foam"):
            value = value + rng.uniform(-8, 8)
        lut[code] = value
    # nodule voxels start as the lung they sit in; _render_ct composites each nodule on top
    lut[_T["nodule"]] = lut[_T["lung"]]
    return lut


def _render_ct(an: Anatomy, grid: _Grid, rng: np.random.Generator, noise_std: float, fov_circle: bool):
    r = an.render(grid)
    lut = _ct_lut(rng, an.contrast)
    hu = lut[r.tissues]
    texture = _smooth_noise(rng, grid.shape, factor=3)
    # tissue texture: lungs show gravity-dependent density (denser at the back) and parenchymal
    # mottling; fat and muscle vary a little
    lung = (r.tissues == _T["lung"]) | (r.tissues == _T["nodule"])
    gradient = 50.0 * np.clip((r.y - (an.cy - an.bc)) / (2 * an.bc), 0, 1)
    hu += np.where(lung, gradient + 22.0 * texture, 0.0).astype(np.float32)
    soft = (r.tissues == _T["fat"]) | (r.tissues == _T["muscle"]) | (r.tissues == _T["liver"])
    hu += np.where(soft, 6.0 * texture, 0.0).astype(np.float32)

    # partial-volume compositing of the thin structures
    hu += 0.35 * r.fissure_frac * (lut[_T["airway_wall"]] - hu)
    vessel_hu = lut[_T["vessel"]]
    np.multiply(hu, 1 - r.vessel_frac, out=hu)
    hu += r.vessel_frac * vessel_hu
    wall_hu, air_hu = lut[_T["airway_wall"]], lut[_T["airway"]]
    outer = np.maximum(r.airway_outer - r.airway_lumen, 0)
    hu = hu * (1 - r.airway_outer) + outer * wall_hu + r.airway_lumen * air_hu
    for spec, (sl, frac, core) in zip(an._nodule_specs, r.nodule_frac, strict=True):
        if sl is None:
            continue
        sub = hu[sl]
        tex = texture[sl]
        kind = spec.nodule.kind
        if kind in ("ground_glass", "part_solid"):
            ggo = spec.hu_ggo + 35.0 * tex
            # ground glass veils the lung but leaves the vessels running through it visible
            target = np.maximum(sub, ggo)
            sub += frac * (target - sub)
            if core is not None:
                sub += core * (spec.hu_solid + 10.0 * tex - sub)
        else:
            sub += frac * (spec.hu_solid + 12.0 * tex - sub)
        hu[sl] = sub

    # the reconstruction kernel's blur, then correlated quantum noise
    hu = ndimage.gaussian_filter(hu, sigma=(0.55, 0.55, 0.35), truncate=3.0)
    noise = ndimage.gaussian_filter(
        rng.standard_normal(grid.shape, dtype=np.float32), sigma=(0.6, 0.6, 0.3), truncate=3.0
    )
    noise *= noise_std / max(float(noise.std()), 1e-6)
    hu += noise
    np.clip(hu, -1024, 3071, out=hu)
    out = np.rint(hu).astype(np.int16)
    if fov_circle:
        lo, hi = grid.box_lo, grid.box_hi
        c = 0.5 * (lo + hi)
        radius = 0.5 * min(hi[0] - lo[0], hi[1] - lo[1])
        x, y, _ = grid.open_coords()
        outside = ((x - c[0]) ** 2 + (y - c[1]) ** 2)[:, :, 0] > radius * radius
        out[outside] = -2048
    return out, r


# ---------------------------------------------------------------------------------------- public API ---


def _normalise_lungs(lungs: bool | str) -> str:
    if lungs is True:
        return "both"
    if lungs is False or lungs is None:
        return "none"
    if lungs not in ("both", "left", "right", "none"):
        raise ValueError(f"lungs must be True/False or one of 'both', 'left', 'right', 'none'; got {lungs!r}")
    return str(lungs)


def _draw_ct_spacing(seed: int) -> tuple[float, float, float]:
    rng = _rng(seed, _STREAM_SPACING)
    # in-plane: a reconstruction field of view of 307..461 mm on a 512 matrix; slices as scanners offer
    in_plane = float(rng.integers(307, 462)) / 512.0
    slice_mm = float(rng.choice([0.625, 1.0, 1.25, 1.5, 2.0, 2.5]))
    return (in_plane, in_plane, slice_mm)


def _default_origin(seed: int, shape: Sequence[int], spacing: Sequence[float]) -> tuple[float, float, float]:
    rng = _rng(seed, _STREAM_SPACING, 1)
    half = 0.5 * (np.asarray(shape) - 1) * np.asarray(spacing)
    x0 = -half[0] + round(float(rng.uniform(-5, 5)), 1)
    y0 = -half[1] + round(float(rng.uniform(-20, 5)), 1)
    z0 = round(float(rng.uniform(-350, -100)), 1)
    return (float(x0), float(y0), float(z0))


def _kinds_for(
    rng: np.random.Generator, n_nodules: int | None, nodule_kinds: Sequence[str] | None
) -> list[str]:
    if nodule_kinds is not None:
        kinds = [str(k) for k in nodule_kinds]
        bad = [k for k in kinds if k not in NODULE_KINDS]
        if bad:
            raise ValueError(f"unknown nodule kinds {bad}; known: {NODULE_KINDS}")
        if n_nodules is None:
            return kinds
        if n_nodules > 0 and not kinds:
            raise ValueError("nodule_kinds is empty but n_nodules > 0")
        return [kinds[i % len(kinds)] for i in range(int(n_nodules))]
    n = int(rng.integers(1, 5)) if n_nodules is None else int(n_nodules)
    if n < 0:
        raise ValueError(f"n_nodules must be >= 0, got {n_nodules}")
    weights = np.array([0.35, 0.15, 0.15, 0.2, 0.15])
    return [str(k) for k in rng.choice(NODULE_KINDS, size=n, p=weights)]


def make_anatomy(
    shape: Sequence[int] = (128, 128, 128),
    spacing: Sequence[float] | None = None,
    seed: int = 0,
    n_nodules: int | None = None,
    nodule_kinds: Sequence[str] | None = None,
    lungs: bool | str = True,
    contrast: bool | None = None,
    nodule_diameter_mm: tuple[float, float] = (3.0, 30.0),
    origin_lps: Sequence[float] | None = None,
) -> tuple[Anatomy, _Grid]:
    """Draw a patient (anatomy, vessel trees, nodules) for a voxel grid; see :func:`make_ct_phantom`.

    Returns the anatomy and the grid it was laid out on (nodule centres sit on its voxel centres).
    """
    shape_t = _validate_grid(shape, spacing)
    lungs_s = _normalise_lungs(lungs)
    spacing_t = _draw_ct_spacing(seed) if spacing is None else tuple(float(s) for s in spacing)
    origin = (
        _default_origin(seed, shape_t, spacing_t)
        if origin_lps is None
        else tuple(float(o) for o in origin_lps)
    )
    grid = _Grid(shape_t, spacing_t, origin)  # type: ignore[arg-type]
    rng = _rng(seed, _STREAM_ANATOMY)
    if contrast is None:
        contrast = bool(rng.random() < 0.3)
    lo_d, hi_d = (float(v) for v in nodule_diameter_mm)
    if not 0 < lo_d <= hi_d:
        raise ValueError(
            f"nodule_diameter_mm must be (min, max) with 0 < min <= max, got {nodule_diameter_mm}"
        )
    an = Anatomy(rng, grid.box_lo, grid.box_hi, lungs_s, contrast, voxel_mm=spacing_t)
    an.grow_trees(rng)
    nod_rng = _rng(seed, _STREAM_NODULES)
    if lungs_s == "none":
        if n_nodules or nodule_kinds:
            raise ValueError("a phantom without lungs cannot hold nodules (n_nodules must be 0 or None)")
        kinds: list[str] = []
    else:
        kinds = _kinds_for(nod_rng, n_nodules, nodule_kinds)
    an.place_nodules(nod_rng, kinds, (lo_d, hi_d), grid)
    an.seed = int(seed)  # a phantom made with this anatomy as reference draws its noise from it
    return an, grid


def _series_uid(modality: str, seed: int, grid: _Grid, *extra: object) -> str:
    sources = [
        "lungcad-phantom",
        modality,
        str(int(seed)),
        repr(grid.shape),
        repr(grid.spacing),
        repr(grid.origin),
    ]
    sources += [repr(e) for e in extra]
    return generate_uid(entropy_srcs=sources)


def make_ct_phantom(
    shape: Sequence[int] = (128, 128, 128),
    spacing: Sequence[float] | None = None,
    seed: int = 0,
    n_nodules: int | None = None,
    nodule_kinds: Sequence[str] | None = None,
    *,
    lungs: bool | str = True,
    contrast: bool | None = None,
    noise_std: float | None = None,
    fov_circle: bool = False,
    nodule_diameter_mm: tuple[float, float] = (3.0, 30.0),
    origin_lps: Sequence[float] | None = None,
    reference: CTPhantom | PETPhantom | MRPhantom | None = None,
) -> CTPhantom:
    """A synthetic chest CT in Hounsfield units with known lungs and nodules.

    Args:
        shape: voxels (X, Y, Z), at least 16x16x8.
        spacing: voxel size in mm; ``None`` draws it from ``seed`` like a real scanner (in-plane
            0.6..0.9 mm, slices 0.625..2.5 mm).
        seed: everything random is drawn from it.
        n_nodules: how many nodules; ``None`` draws 1..4 (or one per entry of ``nodule_kinds``).
        nodule_kinds: kinds from :data:`NODULE_KINDS`. Without ``n_nodules``, one nodule per entry in
            that order; with it, the kinds are used in turn. ``None`` draws kinds at random.
        lungs: ``True``/"both", "left" or "right" (the other side filled with fluid), or
            ``False``/"none": an abdomen slab (liver, kidneys, bowel with gas, bladder) with no lung.
        contrast: contrast-enhanced blood pool and organs; ``None`` draws it (30 %).
        noise_std: standard deviation of the (spatially correlated) noise in HU; ``None`` draws 15..25.
        fov_circle: set the voxels outside the scanner's circular field of view (the circle inscribed
            in the in-plane extent) to the padding value -2048, as real scanners do. Off by default.
        nodule_diameter_mm: (min, max) of the log-uniform nodule diameters; a diameter is clipped to
            what fits in the lungs of this field of view.
        origin_lps: world position of voxel (0, 0, 0); ``None`` draws a scanner-like one.
        reference: another phantom whose patient to image: the CT covers the same world box with
            ``shape`` voxels (``spacing`` and ``origin_lps`` follow from it) and shows the same anatomy
            and nodules.

    Returns:
        a :class:`CTPhantom`.

    Examples:
        >>> ct = make_ct_phantom((96, 96, 64), seed=3, nodule_kinds=("solid", "ground_glass"))
        >>> ct.hu.dtype, ct.hu.shape, [n.kind for n in ct.nodules]
        (dtype('int16'), (96, 96, 64), ['solid', 'ground_glass'])
        >>> bool(-950 < ct.hu[ct.lungs & (ct.nodule_labels == 0)].mean() < -650)
        True
    """
    if reference is not None:
        an, grid = _reference_grid(reference, shape, spacing)
        seed = an.seed
    else:
        an, grid = make_anatomy(
            shape, spacing, seed, n_nodules, nodule_kinds, lungs, contrast, nodule_diameter_mm, origin_lps
        )
    rng = _rng(seed, _STREAM_CT, *grid.shape)
    if noise_std is None:
        noise_std = float(rng.uniform(15, 25))
    hu, r = _render_ct(an, grid, rng, float(noise_std), bool(fov_circle))
    uid = _series_uid("CT", seed, grid, an.lungs, an.nodules, noise_std, fov_circle, an.contrast)
    return CTPhantom(
        hu=hu,
        spacing=grid.spacing,
        origin_lps=grid.origin,
        lungs=r.lungs,
        nodule_labels=r.nodule_labels,
        nodules=list(an.nodules),
        seriesuid=uid,
        tissues=r.tissues,
        anatomy=an,
    )


def _reference_grid(
    reference: CTPhantom | PETPhantom | MRPhantom, shape: Sequence[int], spacing: Sequence[float] | None
) -> tuple[Anatomy, _Grid]:
    an = reference.anatomy
    if an is None:
        raise ValueError("the reference phantom carries no anatomy")
    shape_t = _validate_grid(shape, None)
    size = an.box_hi - an.box_lo
    sp = size / np.asarray(shape_t)
    if spacing is not None and not np.allclose(spacing, sp, rtol=1e-6):
        raise ValueError(
            f"with a reference, spacing follows from shape: {tuple(sp)} for {shape_t}, got {spacing}"
        )
    origin = an.box_lo + 0.5 * sp
    return an, _Grid(shape_t, tuple(float(s) for s in sp), tuple(float(o) for o in origin))  # type: ignore[arg-type]


def _draw_pet_spacing(seed: int) -> tuple[float, float, float]:
    rng = _rng(seed, _STREAM_SPACING, 2)
    in_plane = float(rng.uniform(2.0, 4.1))
    return (in_plane, in_plane, float(rng.choice([2.0, 2.5, 3.0, 3.27, 4.0])))


def _draw_mr_spacing(seed: int) -> tuple[float, float, float]:
    rng = _rng(seed, _STREAM_SPACING, 3)
    in_plane = float(rng.uniform(0.9, 1.6))
    return (in_plane, in_plane, float(rng.choice([3.0, 4.0, 5.0, 6.0])))


def _lesion_labels(an: Anatomy, grid: _Grid):
    labels = np.zeros(grid.shape, dtype=np.uint8)
    fracs = []
    h = grid.soft_width
    for n, spec in enumerate(an._nodule_specs, start=1):
        r_max = spec.radius * (1 + spec.lobe_amp) + h
        sl = grid.bbox(spec.center - r_max, spec.center + r_max)
        if sl is None:
            fracs.append((None, None))
            continue
        lx, ly, lz = grid.local_coords(sl)
        sd = spec.signed(lx, ly, lz)
        np.copyto(labels[sl], np.uint8(n), where=sd <= 0)
        fracs.append((sl, np.clip(0.5 - sd / h, 0, 1).astype(np.float32)))
    return labels, fracs


def make_pet_phantom(
    shape: Sequence[int] = (96, 96, 64),
    spacing: Sequence[float] | None = None,
    seed: int = 0,
    n_lesions: int | None = None,
    *,
    lungs: bool | str = True,
    reference: CTPhantom | PETPhantom | MRPhantom | None = None,
    fwhm_mm: float | None = None,
    noise: float = 0.15,
) -> PETPhantom:
    """A synthetic FDG PET (body-weight SUV, float32) with physiological uptake and hot lesions.

    Uptake: background soft tissue 0.5..1, fat 0.3, lungs 0.4, blood pool ~1.7, liver ~2.2, spleen,
    kidneys, bone marrow, a myocardium of varying avidity (1.5..8), the bladder (abdomen phantoms) very
    hot; the brain is never in a chest field of view and is not modelled. Lesions are the nodules of the
    anatomy with a peak SUV of 3..15, blurred by the scanner's resolution (``fwhm_mm``, drawn 5..7 mm)
    with multiplicative noise (``noise`` relative standard deviation at SUV 1).

    Args:
        shape: voxels (X, Y, Z).
        spacing: mm; ``None`` draws a PET-like one (in-plane 2..4.1 mm, slices 2..4 mm).
        seed: everything random is drawn from it.
        n_lesions: lesions placed like CT nodules; ``None`` draws 1..4.
        lungs: as for :func:`make_ct_phantom`.
        reference: a phantom whose patient to image (same world box, anatomy and lesions), e.g. a
            :class:`CTPhantom` for a PET/CT pair.

    Examples:
        >>> ct = make_ct_phantom((96, 96, 64), seed=1, n_nodules=2)
        >>> pet = make_pet_phantom((48, 48, 32), reference=ct)
        >>> [l.center_lps for l in pet.lesions] == [n.center_lps for n in ct.nodules]
        True
    """
    if reference is not None:
        an, grid = _reference_grid(reference, shape, spacing)
        seed = an.seed
    else:
        sp = _draw_pet_spacing(seed) if spacing is None else spacing
        an, grid = make_anatomy(shape, sp, seed, n_lesions, None, lungs, None, (8.0, 30.0))
    rng = _rng(seed, _STREAM_PET, *grid.shape)
    r = an.render(grid)
    lut = np.zeros(_N_TISSUES, dtype=np.float32)
    for name, code in TISSUES.items():
        lut[code] = _PET_SUV[name] * (rng.uniform(0.85, 1.15) if _PET_SUV[name] > 0 else 0.0)
    lut[_T["myocardium"]] = rng.uniform(1.5, 8.0)
    lut[_T["bladder"]] = rng.uniform(15.0, 40.0)
    suv = lut[r.tissues]
    suv = suv * (1 - r.vessel_frac) + r.vessel_frac * lut[_T["vessel"]]
    labels, fracs = _lesion_labels(an, grid)
    lesion_suv = []
    for spec, (sl, frac) in zip(an._nodule_specs, fracs, strict=True):
        peak = float(rng.uniform(3.0, 6.0) if spec.nodule.kind == "ground_glass" else rng.uniform(4.0, 15.0))
        lesion_suv.append(round(peak, 3))
        if sl is not None:
            suv[sl] += frac * (peak - suv[sl])
    fwhm = float(rng.uniform(5.0, 7.0)) if fwhm_mm is None else float(fwhm_mm)
    sigma = [fwhm / 2.3548 / s for s in grid.spacing]
    suv = ndimage.gaussian_filter(suv, sigma=sigma, truncate=3.0)
    # count statistics: noise grows with the square root of the uptake; PET noise is blobby
    field_ = ndimage.gaussian_filter(rng.standard_normal(grid.shape, dtype=np.float32), sigma=0.7)
    field_ /= max(float(field_.std()), 1e-6)
    suv = suv + noise * np.sqrt(np.maximum(suv, 0.05)) * field_
    suv = np.maximum(suv, 0).astype(np.float32)
    uid = _series_uid("PT", seed, grid, an.nodules)
    return PETPhantom(
        suv, grid.spacing, grid.origin, labels, list(an.nodules), lesion_suv, uid, r.tissues, an
    )


def make_mr_phantom(
    shape: Sequence[int] = (128, 128, 48),
    spacing: Sequence[float] | None = None,
    seed: int = 0,
    n_lesions: int | None = None,
    *,
    lungs: bool | str = True,
    reference: CTPhantom | PETPhantom | MRPhantom | None = None,
    noise_std: float | None = None,
) -> MRPhantom:
    """A synthetic T1-weighted MR (float32, arbitrary units 0..~1100) with tissue contrast and lesions.

    Fat and fatty marrow are bright, muscle and myocardium intermediate, lungs, air, cortical bone and
    flowing blood dark; a smooth coil bias field and Rician noise (``noise_std``, drawn 10..20) on top.

    Args:
        shape: voxels (X, Y, Z).
        spacing: mm; ``None`` draws an MR-like one (in-plane 0.9..1.6 mm, slices 3..6 mm).
        seed: everything random is drawn from it.
        n_lesions: lesions placed like CT nodules; ``None`` draws 1..4.
        lungs: as for :func:`make_ct_phantom`.
        reference: a phantom whose patient to image, e.g. a :class:`PETPhantom` for an MR/PET pair.

    Examples:
        >>> mr = make_mr_phantom((64, 64, 24), seed=2)
        >>> fat, muscle = mr.intensity[mr.tissues == TISSUES["fat"]], mr.intensity[mr.tissues == TISSUES["muscle"]]
        >>> bool(fat.mean() > 2 * muscle.mean())
        True
    """
    if reference is not None:
        an, grid = _reference_grid(reference, shape, spacing)
        seed = an.seed
    else:
        sp = _draw_mr_spacing(seed) if spacing is None else spacing
        an, grid = make_anatomy(shape, sp, seed, n_lesions, None, lungs, None, (8.0, 30.0))
    rng = _rng(seed, _STREAM_MR, *grid.shape)
    r = an.render(grid)
    lut = np.zeros(_N_TISSUES, dtype=np.float32)
    for name, code in TISSUES.items():
        lut[code] = _MR_T1[name] * rng.uniform(0.92, 1.08)
    img = lut[r.tissues]
    img = img * (1 - r.vessel_frac) + r.vessel_frac * lut[_T["vessel"]]
    labels, fracs = _lesion_labels(an, grid)
    for sl, frac in fracs:
        if sl is not None:
            img[sl] += frac * (lut[_T["nodule"]] - img[sl])
    img = ndimage.gaussian_filter(img, sigma=0.5, truncate=3.0)
    # receive-coil bias: a smooth multiplicative field, brighter near the anterior coil
    x, y, z = grid.open_coords()
    lo, hi = grid.box_lo, grid.box_hi
    u = (x - 0.5 * (lo[0] + hi[0])) / (hi[0] - lo[0])
    v = (y - 0.5 * (lo[1] + hi[1])) / (hi[1] - lo[1])
    w = (z - 0.5 * (lo[2] + hi[2])) / (hi[2] - lo[2])
    c = rng.uniform(-0.25, 0.25, size=5)
    bias = 1.0 + c[0] * u - abs(c[1]) * v + c[2] * w + c[3] * u * u + c[4] * v * v
    img = img * bias.astype(np.float32)
    sigma_n = float(rng.uniform(10, 20)) if noise_std is None else float(noise_std)
    n1 = rng.standard_normal(grid.shape, dtype=np.float32) * sigma_n
    n2 = rng.standard_normal(grid.shape, dtype=np.float32) * sigma_n
    img = np.sqrt((img + n1) ** 2 + n2**2).astype(np.float32)
    uid = _series_uid("MR", seed, grid, an.nodules)
    return MRPhantom(img, grid.spacing, grid.origin, labels, list(an.nodules), uid, r.tissues, an)
