"""Real chest CT backgrounds for nodule insertion: the scan, its lungs, its noise, and the windows cut from it.

:func:`load_background` reads a user's scan (any format :func:`~lungcad_transforms.data.load_image`
takes), checks that it is CT, masks its lungs with :class:`~lungcad_transforms.transforms.LungMask`
and measures its noise. :func:`cut_case` cuts one training case out of it: a window of the requested size
around the lungs that keeps clear of the scan's own known lesions, flipped and slightly deformed (MONAI
``Rand2DElasticd``, in-plane), so that one scan gives many distinct cases.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from lungcad_transforms.data.coords import world_to_voxel
from lungcad_transforms.errors import InputError

logger = logging.getLogger(__name__)

__all__ = ["Background", "load_background", "cut_case", "scan_noise", "lesion_voxels"]


@dataclass
class Background:
    """A real scan ready for insertion (RAS, as :func:`load_image` gives it).

    Attributes:
        name: where it came from (file or folder), for messages.
        seriesuid: its id (DICOM SeriesInstanceUID or file name stem).
        hu: ``(X, Y, Z)`` float32 HU.
        lungs: ``(X, Y, Z)`` bool, :class:`LungMask` without dilation (holes filled).
        affine: 4x4 voxel -> RAS mm.
        spacing: mm per voxel.
        lesions: known lesions of the scan as ``(centre LPS mm, keep-out radius mm, row)``: never inside
            a training window, listed as excluded in a test scan.
    """

    name: str
    seriesuid: str
    hu: np.ndarray
    lungs: np.ndarray
    affine: np.ndarray
    spacing: np.ndarray
    lesions: list[tuple[np.ndarray, float, dict[str, Any]]]

    @property
    def extent_mm(self) -> np.ndarray:
        return np.asarray(self.hu.shape) * self.spacing


def scan_noise(hu: np.ndarray, spacing: Sequence[float]) -> float:
    """The scan's noise SD (HU): local SD in homogeneous soft tissue (10th percentile over -150..150 HU voxels).

    Local SD over 5 x 5 in-plane voxels; the low percentile picks regions without edges (muscle, liver,
    heart, fat), where what varies is noise; corrected for the low percentile's bias on pure noise.
    0 when the scan has no soft tissue.

    Examples:
        >>> rng = np.random.default_rng(0)
        >>> float(round(scan_noise(40 + 20 * rng.standard_normal((64, 64, 8)).astype(np.float32), (0.7, 0.7, 2.0)) / 20, 1))
        1.0
    """
    work = hu.astype(np.float32)
    size = (5, 5, 1)
    mean = ndimage.uniform_filter(work, size)
    sq = ndimage.uniform_filter(work * work, size)
    sd = np.sqrt(np.maximum(sq - mean * mean, 0.0))
    soft = ndimage.binary_erosion((work > -150) & (work < 150), iterations=2)
    if soft.sum() < 100:
        return 0.0
    # the 10th percentile of the SD of 25 samples of pure noise lies 1.28 standard errors below it
    return float(np.percentile(sd[soft], 10)) / (1.0 - 1.2816 / np.sqrt(2 * 24))


def load_background(
    ref: str | Mapping[str, Any], lesions: Sequence[Mapping[str, Any]] = (), keep_out_mm: float = 25.0
) -> Background:
    """Load one unannotated chest CT as a background.

    Args:
        ref: a :func:`~lungcad_transforms.data.find_images` entry, or a path.
        lesions: LUNA16 annotation rows (LPS mm) of lesions known to be in the scan (matched on
            ``seriesuid``); each keeps ``max(keep_out_mm, diameter)`` mm of clearance.
        keep_out_mm: the least clearance around a known lesion.

    Raises:
        InputError: naming the scan: not CT, or no lungs in view.
    """
    import warnings

    from lungcad_transforms.data.image_reader import load_image
    from lungcad_transforms.transforms.io.functional import check_ct
    from lungcad_transforms.transforms.lung.array import LungMask, NoLungWarning

    image = load_image(ref)
    name = str(image.meta["filename_or_obj"])
    check_ct(image, name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NoLungWarning)
        lungs = np.asarray(LungMask(dilation_mm=0.0, dtype=bool)(image))[0]
    lungs = _drop_border_spanning(lungs, name)
    spacing = np.asarray(image.pixdim, dtype=np.float64)[:3]
    if lungs.sum() * spacing.prod() < 20_000:  # 20 ml: less than a slab through one lung
        raise InputError(name, "no lungs in view (LungMask finds under 20 ml of lung)")
    affine = np.asarray(image.affine, dtype=np.float64)
    uid = str(image.meta["seriesuid"])
    known = []
    for row in lesions:
        if str(row["seriesuid"]) != uid:
            continue
        lps = np.array([float(row["coordX"]), float(row["coordY"]), float(row["coordZ"])])
        known.append((lps, max(float(keep_out_mm), float(row.get("diameter_mm", 0.0))), dict(row)))
    hu = np.asarray(image[0], dtype=np.float32)
    return Background(name, uid, hu, lungs, affine, spacing, known)


def _drop_border_spanning(lungs: np.ndarray, name: str) -> np.ndarray:
    # LungMask can take air outside the body for lung when a dense object in front of the chest (a shield,
    # the table) closes it off from the border it does not reach; no lung spans the whole field of view
    import cc3d

    labels = cc3d.connected_components(lungs, connectivity=6)
    keep = lungs.copy()
    for index in range(1, int(labels.max()) + 1):
        where = np.argwhere(labels == index)
        lo, hi = where.min(axis=0), where.max(axis=0)
        if (lo[0] == 0 and hi[0] == lungs.shape[0] - 1) or (lo[1] == 0 and hi[1] == lungs.shape[1] - 1):
            logger.info(
                "%s: dropping a 'lung' component spanning the whole field of view (outside air)", name
            )
            keep[labels == index] = False
    return keep


def _voxel_box_clear(bg: Background, lo: np.ndarray, hi: np.ndarray) -> bool:
    # the window box (voxel corners lo..hi) is disjoint from every known lesion's keep-out sphere
    for c, reach in zip(lesion_voxels(bg, bg.affine), (r for _, r, _ in bg.lesions), strict=True):
        nearest = np.clip(c, lo, hi - 1)
        if np.linalg.norm((nearest - c) * bg.spacing) < reach:
            return False
    return True


def cut_case(
    bg: Background,
    rng: np.random.Generator,
    window_mm: Sequence[float | None] | None,
    min_lung_fraction: float = 0.15,
    flip: bool = True,
    deform: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """One case's background: a window of the scan, flipped and deformed. ``None`` when no window fits.

    Args:
        bg: the background.
        rng: draws the window, the flips and the deformation.
        window_mm: window size (mm) per axis, an entry ``None`` for the scan's whole extent along that axis
            (``(None, None, 64)``: an axial slab, whose lungs LungMask finds as in any scan; a window cut
            inside the chest in-plane shows lung across the whole field of view, which LungMask takes for
            outside air); ``None``: the whole scan (a test case), which must then hold no known lesion inside
            its lungs for training use (the caller lists them as excluded instead).
        min_lung_fraction: a window must be at least this much lung.
        flip: flip left-right and front-back at random (each with probability 0.5).
        deform: a small random in-plane elastic deformation with rotation and scaling (MONAI ``Rand2DElasticd``,
            cubic-spline resampling so the noise texture keeps its grain), with probability 0.5.

    Returns:
        ``(hu, lungs, affine)`` of the case, on the scan's own voxel size.

    Raises:
        InputError: the scan is smaller than the window along an axis ("too short for the window").
    """
    shape = np.asarray(bg.hu.shape)
    if window_mm is None:
        lo, hi = np.zeros(3, int), shape.copy()
    else:
        wanted = np.array([np.nan if w is None else float(w) for w in window_mm], dtype=np.float64)
        size = np.where(np.isnan(wanted), shape, np.ceil(wanted / bg.spacing)).astype(int)
        short = [i for i in range(3) if size[i] > shape[i]]
        if short:
            axis = "xyz"[short[0]]
            raise InputError(
                bg.name,
                f"too short for the window: {bg.extent_mm[short[0]]:.1f} mm along {axis}, the window needs "
                f"{float(window_mm[short[0]]):.1f} mm",
            )
        lung_vox = np.argwhere(bg.lungs)
        for _ in range(60):
            centre = lung_vox[rng.integers(len(lung_vox))]
            lo = np.clip(centre - size // 2, 0, shape - size)
            hi = lo + size
            if not _voxel_box_clear(bg, lo, hi):
                continue
            region = bg.lungs[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
            if region.mean() >= min_lung_fraction:
                break
        else:
            return None
    sl = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
    hu = bg.hu[sl].copy()
    lungs = bg.lungs[sl].copy()
    affine = bg.affine.copy()
    affine[:3, 3] = (bg.affine @ np.append(lo, 1.0))[:3]
    if flip:
        # the grid stays, the anatomy is mirrored: a new (mirror-image) chest
        for axis in (0, 1):
            if rng.random() < 0.5:
                hu, lungs = np.flip(hu, axis).copy(), np.flip(lungs, axis).copy()
    if deform and rng.random() < 0.5:
        hu, lungs = _deform(hu, lungs, bg.spacing, int(rng.integers(2**31)))
    return hu, lungs, affine


def _deform(
    hu: np.ndarray, lungs: np.ndarray, spacing: np.ndarray, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    import torch
    from monai.transforms import Rand2DElasticd

    # in-plane only, the same field on every slice (slices as channels): a through-plane deformation would
    # resample 1-3 mm slices, and MONAI's dense Rand3DElastic needs tens of GB on a 512 x 512 slab.
    # Control points 30 mm apart moved 1-2 spacings' worth of offset give displacements of 1.5 mm (median,
    # up to about 4 mm); up to 6 degrees of rotation about the slice axis and 5 % scaling on top.
    control = max(int(round(30.0 / float(spacing[:2].min()))), 4)
    elastic = Rand2DElasticd(
        keys=["hu", "lungs"], spacing=(control, control), magnitude_range=(1.0, 2.0), prob=1.0,
        rotate_range=(0.1,), scale_range=(0.05, 0.05), mode=(3, 0), padding_mode="nearest",
    )  # fmt: skip
    elastic.set_random_state(seed=seed)
    slices_first = {"hu": torch.as_tensor(np.moveaxis(hu, 2, 0).copy()),
                    "lungs": torch.as_tensor(np.moveaxis(lungs, 2, 0).astype(np.float32))}  # fmt: skip
    out = elastic(slices_first)
    return np.moveaxis(np.asarray(out["hu"], dtype=np.float32), 0, 2).copy(), np.moveaxis(
        np.asarray(out["lungs"]) > 0.5, 0, 2
    ).copy()


def lesion_voxels(bg: Background, affine: np.ndarray) -> list[np.ndarray]:
    """Known lesion centres in the voxel indices of a case grid with ``affine`` (RAS)."""
    return [world_to_voxel(c[None], affine)[0] for c, _, _ in bg.lesions]
