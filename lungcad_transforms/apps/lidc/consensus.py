"""LIDC-IDRI reader marks grouped into nodules, and 50 % consensus masks."""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from monai.utils import convert_to_numpy

from lungcad_transforms.apps.lidc.geometry import SliceGeometry, read_slice_geometry
from lungcad_transforms.apps.lidc.xml import LidcContour, LidcMark, read_lidc_xml
from lungcad_transforms.data.coords import inside_volume, voxel_to_world, world_to_voxel
from lungcad_transforms.errors import InputError

logger = logging.getLogger(__name__)

__all__ = ["group_marks", "LidcNodule", "LidcConsensus", "lidc_consensus"]


def _raster(contour: LidcContour, rows: int, columns: int) -> np.ndarray:
    """Pixels (column, row) inside an outline, the outline's own pixels excluded.

    LIDC readers traced the first pixels outside the nodule, so the outline is not part of it; this is
    also what makes the volume-equivalent diameters agree with LUNA16's (LIDC-IDRI-0003: 22.3, 9.0 and
    13.0 mm here against 21.5, 8.8 and 12.8 mm in ``annotations.csv``).
    """
    from skimage.draw import polygon

    points = contour.points_col_row
    rr, cc = polygon(points[:, 1], points[:, 0], shape=(rows, columns))
    flat = np.setdiff1d(rr * columns + cc, points[:, 1] * columns + points[:, 0])
    return np.stack([flat % columns, flat // columns], axis=1)


def _mark_pixels(mark: LidcMark, rows: int, columns: int) -> dict[float, np.ndarray]:
    """Per slice z (mm), the flat pixel indices (row * columns + column) one reader includes."""
    per_slice: dict[float, set[int]] = {}
    holes: dict[float, set[int]] = {}
    for contour in mark.contours:
        if len(contour.points_col_row) < 3:
            continue
        col_row = _raster(contour, rows, columns)
        flat = set((col_row[:, 1] * columns + col_row[:, 0]).tolist())
        key = round(contour.z_mm, 3)
        (per_slice if contour.inclusion else holes).setdefault(key, set()).update(flat)
    return {
        z: np.fromiter(sorted(pixels - holes.get(z, set())), dtype=np.int64)
        for z, pixels in per_slice.items()
    }


def _mark_centre(mark: LidcMark, geometry: SliceGeometry) -> np.ndarray:
    """Mean world position (LPS mm) of all points of a mark, on any slice (in the series or not)."""
    points = [
        geometry.pixels_to_world(None, c.points_col_row, c.z_mm)
        for c in mark.contours
        if len(c.points_col_row)
    ]
    return np.concatenate(points).mean(axis=0) if points else np.full(3, np.nan)


def _mark_diameter_mm(mark: LidcMark, geometry: SliceGeometry) -> float:
    """Diameter (mm) of the sphere with the volume one reader outlined, slices outside the series included."""
    n_pixels = sum(len(flat) for flat in _mark_pixels(mark, geometry.rows, geometry.columns).values())
    volume = n_pixels * geometry.pixel_spacing[0] * geometry.pixel_spacing[1] * geometry.slice_spacing
    return float((6.0 * volume / math.pi) ** (1.0 / 3.0))


def group_marks(
    marks: Sequence[LidcMark], geometry: SliceGeometry, match_distance_mm: float = 5.0
) -> list[list[LidcMark]]:
    """Decide which marks of different readers are the same nodule.

    Two marks of different readers are the same nodule when their outlines share a pixel on a slice, or
    when their centres are closer than ``match_distance_mm``. Pairs are merged most-overlapping first
    (union-find), never putting two marks of one reader in one nodule (a reader marks a nodule once).
    Small marks (no outline) are left out.

    Args:
        marks: the marks of all readers of one series.
        geometry: the series' slice geometry (pixel grid and spacing).
        match_distance_mm: centre distance under which non-overlapping marks are still matched.

    Returns:
        groups of marks, one per nodule, ordered by slice position of the first mark.

    Examples:
        >>> read = read_lidc_xml("072.xml")  # doctest: +SKIP
        >>> [len(g) for g in group_marks(read.marks, read_slice_geometry("series"))]  # doctest: +SKIP
        [4, 1, 4, 4]
    """
    outlined = [m for m in marks if not m.is_small]
    pixels = [_mark_pixels(m, geometry.rows, geometry.columns) for m in outlined]
    centres = [_mark_centre(m, geometry) for m in outlined]
    pairs: list[tuple[int, float, int, int]] = []
    for i in range(len(outlined)):
        for j in range(i + 1, len(outlined)):
            if outlined[i].reader == outlined[j].reader:
                continue
            shared = sum(
                int(np.intersect1d(pixels[i][z], pixels[j][z], assume_unique=True).size)
                for z in pixels[i].keys() & pixels[j].keys()
            )
            distance = float(np.linalg.norm(centres[i] - centres[j]))
            if shared > 0 or distance < match_distance_mm:
                # most shared pixels first, then nearest centres
                pairs.append((-shared, distance, i, j))
    pairs.sort()
    parent = list(range(len(outlined)))
    readers_of = [{m.reader} for m in outlined]

    def root(k: int) -> int:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    for _, _, i, j in pairs:
        ri, rj = root(i), root(j)
        if ri == rj or readers_of[ri] & readers_of[rj]:
            continue
        parent[rj] = ri
        readers_of[ri] |= readers_of[rj]
    groups: dict[int, list[int]] = {}
    for k in range(len(outlined)):
        groups.setdefault(root(k), []).append(k)
    ordered = sorted(groups.values(), key=lambda members: (centres[members[0]][2], members[0]))
    return [[outlined[k] for k in members] for members in ordered]


@dataclass
class LidcNodule:
    """One nodule of the consensus: its readers, its size and where its consensus lies in the image.

    Attributes:
        label: value of this nodule in :attr:`LidcConsensus.labels`.
        readers: ids of the readers who marked it.
        marks: those readers' marks.
        diameter_mm: mean over its readers of the diameter of the sphere with the volume they outlined
            (whole scan, slices the series lacks included; LUNA16's ``diameter_mm`` is of this kind).
        centre_lps: mean position of all its readers' outline points (LUNA16 world mm), on any slice.
        consensus_voxels: voxels of the consensus in the image (0 when it lies outside the image).
        consensus_centroid_lps: centroid of those voxels (world mm), or None.
        characteristics: median of each characteristic over its readers (rounded down).
        contours_skipped: outlines on slices the series lacks.
    """

    label: int
    readers: list[str]
    marks: list[LidcMark]
    diameter_mm: float
    centre_lps: np.ndarray
    consensus_voxels: int = 0
    consensus_centroid_lps: np.ndarray | None = None
    characteristics: dict[str, int] = field(default_factory=dict)
    contours_skipped: int = 0

    def to_row(self, seriesuid: str) -> dict[str, Any]:
        """LUNA16 annotation row (``seriesuid,coordX,coordY,coordZ,diameter_mm``), centred on the consensus."""
        centre = self.consensus_centroid_lps if self.consensus_centroid_lps is not None else self.centre_lps
        return {
            "seriesuid": seriesuid,
            "coordX": float(centre[0]),
            "coordY": float(centre[1]),
            "coordZ": float(centre[2]),
            "diameter_mm": round(float(self.diameter_mm), 3),
        }


@dataclass
class LidcConsensus:
    """Consensus masks of one series.

    Attributes:
        labels: ``(X, Y, Z)`` uint16 array on the image grid: 0 background, ``n`` the consensus of
            ``nodules[n-1]``.
        affine: the image's voxel -> RAS affine (as ``MetaTensor.affine``), for writing the mask.
        nodules: all outlined nodules (also those whose consensus lies outside the image).
        series_uid: the series.
        n_small_marks: marks of nodules under 3 mm (not in the mask).
    """

    labels: np.ndarray
    affine: np.ndarray
    nodules: list[LidcNodule]
    series_uid: str
    n_small_marks: int = 0

    @property
    def mask(self) -> np.ndarray:
        """Binary nodule mask (uint8) of all nodules."""
        return (self.labels > 0).astype(np.uint8)


def lidc_consensus(
    xml_path: str | os.PathLike,
    series_dir: str | os.PathLike,
    image: Any = None,
    level: float = 0.5,
    min_readers: int = 1,
    match_distance_mm: float = 5.0,
) -> LidcConsensus:
    """Consensus nodule masks of an LIDC-IDRI series, on the grid of the loaded scan.

    Args:
        xml_path: the series' LIDC XML file.
        series_dir: the series' DICOM folder (headers give each slice's world position).
        image: the loaded scan (``MetaTensor`` (1, X, Y, Z) with a RAS ``affine``, as
            ``lungcad_transforms.io.load_image`` returns it); loaded from ``series_dir`` when None.
        level: fraction of a nodule's readers that must include a voxel (0.5: 2 of 4, 2 of 3, 1 of 2, 1 of 1).
        min_readers: nodules marked by fewer readers are left out of the mask (LUNA16 used 3).
        match_distance_mm: see :func:`group_marks`.

    Returns:
        an :class:`LidcConsensus`.

    Raises:
        InputError: the XML belongs to another series, or bad XML / DICOM (see the readers).

    Examples:
        >>> consensus = lidc_consensus("072.xml", "LIDC-IDRI-0003/<study>/<series>")  # doctest: +SKIP
        >>> [round(n.diameter_mm, 1) for n in consensus.nodules if n.consensus_voxels]  # doctest: +SKIP
        [22.6]
    """
    if not 0.0 < level <= 1.0:
        raise ValueError(f"level must lie in (0, 1], got {level}")
    read = read_lidc_xml(xml_path)
    geometry = read_slice_geometry(series_dir, read.series_uid or None)
    if read.series_uid and geometry.series_uid and read.series_uid != geometry.series_uid:
        raise InputError(xml_path, f"annotates series {read.series_uid}, not {geometry.series_uid}")
    if image is None:
        from lungcad_transforms.data.image_reader import load_image

        image = load_image(os.fspath(series_dir))
    affine = convert_to_numpy(image.affine)
    spatial_shape = tuple(int(s) for s in image.shape[-3:])
    votes_volume = np.zeros(spatial_shape, dtype=np.uint16)  # reused per nodule, kept small (uint16)
    labels = np.zeros(spatial_shape, dtype=np.uint16)
    nodules: list[LidcNodule] = []
    z_have = geometry.positions_lps[:, 2]
    for group in group_marks(read.marks, geometry, match_distance_mm):
        readers = [m.reader for m in group]
        nodule = LidcNodule(
            label=len(nodules) + 1,
            readers=readers,
            marks=group,
            diameter_mm=float(np.mean([_mark_diameter_mm(m, geometry) for m in group])),
            centre_lps=np.mean([_mark_centre(m, geometry) for m in group], axis=0),
            characteristics=_median_characteristics(group),
        )
        nodules.append(nodule)
        if len(readers) < min_readers:
            logger.info(
                "%s: nodule at %s mm marked by %d reader(s) (< %d): not in the mask",
                read.path.name,
                np.round(nodule.centre_lps, 1).tolist(),
                len(readers),
                min_readers,
            )
            continue
        votes_volume[...] = 0
        for mark in group:
            voxels, skipped = _mark_voxels(mark, geometry, affine, spatial_shape)
            nodule.contours_skipped += len(skipped)
            if skipped:
                logger.info(
                    "%s: reader %s nodule %s: %d outline(s) at z %.1f..%.1f mm are on slices this series lacks "
                    "(it holds z %.1f..%.1f mm): skipped",
                    read.path.name,
                    mark.reader,
                    mark.nodule_id,
                    len(skipped),
                    min(skipped),
                    max(skipped),
                    z_have.min(),
                    z_have.max(),
                )
            if voxels.size:
                votes_volume.reshape(-1)[voxels] += 1
        needed = max(1, math.ceil(level * len(readers) - 1e-9))
        consensus = votes_volume >= needed
        # where two nodules' consensus touch, the first keeps the voxel: labels stay a partition
        consensus &= labels == 0
        count = int(consensus.sum())
        nodule.consensus_voxels = count
        if count:
            labels[consensus] = nodule.label
            centroid_index = np.argwhere(consensus).mean(axis=0)
            nodule.consensus_centroid_lps = voxel_to_world(centroid_index, affine)[0]
    n_small = sum(m.is_small for m in read.marks)
    if n_small:
        logger.info(
            "%s: %d mark(s) of nodules under 3 mm (centre point only): not in the mask",
            read.path.name,
            n_small,
        )
    return LidcConsensus(labels, affine, nodules, geometry.series_uid, n_small)


def _mark_voxels(
    mark: LidcMark, geometry: SliceGeometry, affine: np.ndarray, spatial_shape: tuple[int, int, int]
) -> tuple[np.ndarray, list[float]]:
    """Flat voxel indices (in the loaded image) one reader includes, and the z of outlines skipped."""
    voxels: list[np.ndarray] = []
    skipped: list[float] = []
    by_slice = _mark_pixels(mark, geometry.rows, geometry.columns)
    slice_for_z: dict[float, int | None] = {}
    for contour in mark.contours:
        if len(contour.points_col_row) >= 3:
            slice_for_z.setdefault(round(contour.z_mm, 3), geometry.slice_of(contour))
    for z, flat in by_slice.items():
        index = slice_for_z.get(z)
        if index is None:
            skipped.append(z)
            continue
        col_row = np.stack([flat % geometry.columns, flat // geometry.columns], axis=1)
        world = geometry.pixels_to_world(index, col_row)
        ijk = world_to_voxel(world, affine)
        inside = inside_volume(ijk, spatial_shape)
        ijk = np.floor(ijk[inside] + 0.5).astype(np.int64)
        voxels.append(np.ravel_multi_index(tuple(ijk.T), spatial_shape))
    flat_voxels = np.unique(np.concatenate(voxels)) if voxels else np.zeros(0, np.int64)
    return flat_voxels, skipped


def _median_characteristics(group: Iterable[LidcMark]) -> dict[str, int]:
    values: dict[str, list[int]] = {}
    for mark in group:
        for name, value in mark.characteristics.items():
            values.setdefault(name, []).append(value)
    return {name: int(np.floor(np.median(v))) for name, v in values.items()}
