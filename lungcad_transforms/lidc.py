"""LIDC-IDRI reader annotations: XML reading, nodule matching across readers, 50 % consensus masks; and
LUNA16 sphere masks for users who have LUNA16 only.

An LIDC-IDRI CT series comes with one XML file (``LidcReadMessage``) holding up to four reading
sessions. Each session lists the reader's nodules (``unblindedReadNodule``): for a nodule of 3 mm or more,
one outline per slice (``roi``: ``imageZposition``, ``imageSOP_UID``, ``inclusion``, the outline's pixel
``edgeMap`` points as column ``xCoord`` / row ``yCoord``) and nine characteristics (malignancy, ...);
for a smaller nodule a single point per slice and no characteristics; non-nodules (``nonNodule``) are
single points too. Readers marked independently, so nothing in the file says which marks of different
readers are the same nodule: :func:`group_marks` decides by overlap and centre distance.

The consensus of a nodule is the set of voxels included by at least ``level`` (50 %) of the readers who
marked that nodule. Outlines are rasterised on the DICOM pixel grid of their slice with
``skimage.draw.polygon`` (interior) plus the outline pixels themselves, inclusion outlines of one reader on
one slice are united and ``inclusion=FALSE`` outlines (holes) removed, then every pixel is placed in the
loaded image through its world position (DICOM ``ImagePositionPatient`` / ``ImageOrientationPatient`` /
``PixelSpacing`` -> LPS mm -> ``coords.world_to_voxel``), so the mask lines up with the scan as this
project loads it (RAS, ``MetaTensor.affine``) whatever the slice order or orientation.

A scan with slices missing (a slab, or a series with gaps) keeps what it has: outlines on slices not in
the series are skipped and logged.
"""

from __future__ import annotations

import logging
import math
import os
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lungcad_transforms.coords import inside_volume, voxel_to_world, world_to_voxel
from lungcad_transforms.errors import InputError

__all__ = [
    "LidcContour",
    "LidcMark",
    "LidcRead",
    "SliceGeometry",
    "LidcNodule",
    "LidcConsensus",
    "read_lidc_xml",
    "read_slice_geometry",
    "group_marks",
    "lidc_consensus",
    "find_lidc_xml",
    "sphere_mask",
    "prepare_lidc_dataset",
    "prepare_luna16_dataset",
]

logger = logging.getLogger(__name__)

CHARACTERISTICS = (
    "subtlety",
    "internalStructure",
    "calcification",
    "sphericity",
    "margin",
    "lobulation",
    "spiculation",
    "texture",
    "malignancy",
)


@dataclass
class LidcContour:
    """One outline of one reader's nodule on one slice.

    Attributes:
        z_mm: ``imageZposition`` (the slice's ``ImagePositionPatient`` z, mm).
        sop_uid: ``imageSOP_UID`` of the slice.
        inclusion: False for an outline that cuts a hole out of the nodule.
        points_col_row: ``(N, 2)`` integer pixel positions (column = ``xCoord``, row = ``yCoord``).
    """

    z_mm: float
    sop_uid: str
    inclusion: bool
    points_col_row: np.ndarray


@dataclass
class LidcMark:
    """One reader's mark of one nodule (``unblindedReadNodule``)."""

    reader: str
    nodule_id: str
    contours: list[LidcContour]
    characteristics: dict[str, int] = field(default_factory=dict)

    @property
    def is_small(self) -> bool:
        """A nodule under 3 mm: LIDC gives only its centre point, no outline."""
        return all(len(c.points_col_row) < 3 for c in self.contours)


@dataclass
class LidcRead:
    """The content of one LIDC-IDRI XML file that matters for nodule masks."""

    path: Path
    series_uid: str
    study_uid: str
    readers: list[str]
    marks: list[LidcMark]
    n_non_nodules: int


def _local(tag: str) -> str:
    # the LIDC files use the namespace http://www.nih.gov on every element; compare local names only
    return tag.rsplit("}", 1)[-1]


def _child(element: ET.Element, name: str) -> ET.Element | None:
    for child in element:
        if _local(child.tag) == name:
            return child
    return None


def _children(element: ET.Element, name: str) -> list[ET.Element]:
    return [child for child in element if _local(child.tag) == name]


def _text(element: ET.Element | None, default: str = "") -> str:
    return element.text.strip() if element is not None and element.text is not None else default


def read_lidc_xml(path: str | os.PathLike) -> LidcRead:
    """Read the reader marks of an LIDC-IDRI CT annotation file.

    Args:
        path: the XML file (``069.xml`` etc. next to the series' DICOM files).

    Returns:
        an :class:`LidcRead`: series UID, reader ids (one per reading session), the nodule marks
        (small ones included, flagged by :attr:`LidcMark.is_small`), and the number of non-nodule marks.

    Raises:
        InputError: not XML, not an LIDC CT read message (the chest radiograph files use
            ``IdriReadMessage``), or an outline point that is not an integer pixel position.

    Examples:
        >>> read = read_lidc_xml("LIDC-IDRI-0003/.../072.xml")  # doctest: +SKIP
        >>> len(read.readers), sum(not m.is_small for m in read.marks)  # doctest: +SKIP
        (4, 13)
    """
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except FileNotFoundError:
        raise InputError(path, "LIDC annotation file not found") from None
    except ET.ParseError as err:
        raise InputError(path, f"is not well-formed XML ({err})") from None
    if _local(root.tag) != "LidcReadMessage":
        raise InputError(path, f"is not an LIDC CT read message (root element {_local(root.tag)!r})")
    header = _child(root, "ResponseHeader")
    series_uid = _text(_child(header, "SeriesInstanceUid")) if header is not None else ""
    study_uid = _text(_child(header, "StudyInstanceUID")) if header is not None else ""
    readers: list[str] = []
    marks: list[LidcMark] = []
    n_non_nodules = 0
    for number, session in enumerate(_children(root, "readingSession"), start=1):
        # the anonymised radiologist ids are not unique across all files, but they are within one file;
        # a missing id falls back to the session's position
        reader = _text(_child(session, "servicingRadiologistID")) or f"session-{number}"
        readers.append(reader)
        n_non_nodules += len(_children(session, "nonNodule"))
        for nodule in _children(session, "unblindedReadNodule"):
            nodule_id = _text(_child(nodule, "noduleID"))
            characteristics: dict[str, int] = {}
            block = _child(nodule, "characteristics")
            if block is not None:
                for name in CHARACTERISTICS:
                    value = _text(_child(block, name))
                    if value.lstrip("-").isdigit():
                        characteristics[name] = int(value)
            contours = []
            for roi in _children(nodule, "roi"):
                try:
                    z_mm = float(_text(_child(roi, "imageZposition")))
                    points = [
                        (int(_text(_child(edge, "xCoord"))), int(_text(_child(edge, "yCoord"))))
                        for edge in _children(roi, "edgeMap")
                    ]
                except ValueError as err:
                    raise InputError(
                        path, f"reader {reader}, nodule {nodule_id}: unreadable outline ({err})"
                    ) from None
                contours.append(
                    LidcContour(
                        z_mm=z_mm,
                        sop_uid=_text(_child(roi, "imageSOP_UID")),
                        inclusion=_text(_child(roi, "inclusion"), "TRUE").upper() != "FALSE",
                        points_col_row=np.asarray(points, dtype=np.int64).reshape(-1, 2),
                    )
                )
            marks.append(LidcMark(reader, nodule_id, contours, characteristics))
    return LidcRead(path, series_uid, study_uid, readers, marks, n_non_nodules)


@dataclass
class SliceGeometry:
    """Where the pixels of each slice of a DICOM series lie in the world (from the headers only).

    Attributes:
        series_uid: SeriesInstanceUID.
        sop_uids: SOPInstanceUID per slice.
        positions_lps: ``(S, 3)`` ImagePositionPatient per slice (LPS mm).
        row_direction: unit vector along which the column index grows (ImageOrientationPatient[:3]).
        column_direction: unit vector along which the row index grows (ImageOrientationPatient[3:]).
        pixel_spacing: (row spacing, column spacing) in mm, as DICOM PixelSpacing.
        rows, columns: slice size in pixels.
    """

    series_uid: str
    sop_uids: list[str]
    positions_lps: np.ndarray
    row_direction: np.ndarray
    column_direction: np.ndarray
    pixel_spacing: tuple[float, float]
    rows: int
    columns: int

    def slice_of(self, contour: LidcContour, tolerance_mm: float = 0.05) -> int | None:
        """Index of the slice an outline was drawn on: by SOP UID, else by z position; None if absent."""
        if contour.sop_uid and contour.sop_uid in self._sop_index:
            return self._sop_index[contour.sop_uid]
        gaps = np.abs(self.positions_lps[:, 2] - contour.z_mm)
        best = int(np.argmin(gaps)) if len(gaps) else -1
        return best if best >= 0 and gaps[best] <= tolerance_mm else None

    def pixels_to_world(
        self, slice_index: int | None, col_row: np.ndarray, z_mm: float | None = None
    ) -> np.ndarray:
        """LPS mm of pixel centres ``(N, 2)`` (column, row) on a slice.

        For an outline on a slice the series lacks, ``slice_index`` None and ``z_mm`` place it using the
        in-plane geometry of the first slice (LIDC series are axial stacks with one in-plane position).
        """
        col_row = np.asarray(col_row, dtype=np.float64).reshape(-1, 2)
        if slice_index is None:
            origin = self.positions_lps[0].copy()
            origin[2] = float(z_mm if z_mm is not None else origin[2])
        else:
            origin = self.positions_lps[slice_index]
        d_row, d_col = self.pixel_spacing
        return (
            origin[None, :]
            + col_row[:, :1] * d_col * self.row_direction[None, :]
            + col_row[:, 1:] * d_row * self.column_direction[None, :]
        )

    @property
    def slice_spacing(self) -> float:
        """Distance between neighbouring slices (mm): the median gap, or 1 mm for a single slice."""
        normal = np.cross(self.row_direction, self.column_direction)
        along = np.sort(self.positions_lps @ normal)
        gaps = np.diff(along)
        gaps = gaps[gaps > 1e-3]
        return float(np.median(gaps)) if gaps.size else 1.0

    @property
    def _sop_index(self) -> dict[str, int]:
        return {uid: i for i, uid in enumerate(self.sop_uids)}


def read_slice_geometry(series_dir: str | os.PathLike, series_uid: str | None = None) -> SliceGeometry:
    """Read the per-slice geometry of a DICOM series from its headers (pixel data is not read).

    Args:
        series_dir: folder holding the series' files (other files and other series are ignored).
        series_uid: which series to read when the folder holds several; default: the one with most slices.

    Raises:
        InputError: no DICOM image with a position in the folder, or slices that disagree on orientation.

    Examples:
        >>> geometry = read_slice_geometry("LIDC-IDRI-0003/<study>/<series>")  # doctest: +SKIP
        >>> geometry.positions_lps[:, 2].min(), geometry.pixel_spacing  # doctest: +SKIP
        (-204.0, (0.820312, 0.820312))
    """
    import pydicom

    folder = Path(series_dir)
    if not folder.is_dir():
        raise InputError(folder, "DICOM series folder not found")
    by_series: dict[str, list[Any]] = {}
    for file in sorted(p for p in folder.iterdir() if p.is_file()):
        try:
            ds = pydicom.dcmread(file, stop_before_pixels=True)
        except Exception:  # not DICOM (the LIDC XML sits in the same folder): not a slice
            continue
        if (
            "ImagePositionPatient" not in ds
            or "ImageOrientationPatient" not in ds
            or "PixelSpacing" not in ds
        ):
            continue
        by_series.setdefault(str(ds.get("SeriesInstanceUID", "")), []).append(ds)
    if not by_series:
        raise InputError(folder, "holds no DICOM image with ImagePositionPatient / PixelSpacing")
    if series_uid is not None:
        if series_uid not in by_series:
            raise InputError(folder, f"holds no slice of series {series_uid}")
        slices = by_series[series_uid]
    else:
        series_uid, slices = max(by_series.items(), key=lambda item: len(item[1]))
    orientation = np.asarray([float(v) for v in slices[0].ImageOrientationPatient])
    for ds in slices[1:]:
        if not np.allclose([float(v) for v in ds.ImageOrientationPatient], orientation, atol=1e-4):
            raise InputError(folder, f"slices of series {series_uid} differ in ImageOrientationPatient")
    normal = np.cross(orientation[:3], orientation[3:])
    slices.sort(key=lambda ds: float(np.dot([float(v) for v in ds.ImagePositionPatient], normal)))
    spacing = tuple(float(v) for v in slices[0].PixelSpacing)
    return SliceGeometry(
        series_uid=series_uid,
        sop_uids=[str(ds.get("SOPInstanceUID", "")) for ds in slices],
        positions_lps=np.asarray(
            [[float(v) for v in ds.ImagePositionPatient] for ds in slices], dtype=np.float64
        ),
        row_direction=orientation[:3],
        column_direction=orientation[3:],
        pixel_spacing=(spacing[0], spacing[1]),
        rows=int(slices[0].Rows),
        columns=int(slices[0].Columns),
    )


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
        from lungcad_transforms.io import load_image

        image = load_image(os.fspath(series_dir))
    affine = np.asarray(
        image.affine.detach().cpu().numpy() if hasattr(image.affine, "detach") else image.affine
    )
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


def find_lidc_xml(root: str | os.PathLike) -> dict[str, Path]:
    """Map SeriesInstanceUID -> LIDC XML file for every LIDC CT read message under ``root``.

    LIDC-IDRI keeps the XML beside the DICOM files; some mirrors keep annotations in a separate tree
    (``tcia-lidc-xml``). Matching by the UID in the XML header finds them either way. Files that are not
    LIDC CT read messages (chest radiograph reads, other XML) are ignored.

    Examples:
        >>> find_lidc_xml("/data/LIDC-IDRI")  # doctest: +SKIP
        {'1.3.6.1.4.1.14519.5.2.1.6279.6001.1707...': PosixPath('/data/LIDC-IDRI/LIDC-IDRI-0003/.../072.xml')}
    """
    found: dict[str, Path] = {}
    for path in sorted(Path(root).rglob("*.xml")):
        try:
            read = read_lidc_xml(path)
        except InputError:
            continue
        if read.series_uid:
            found.setdefault(read.series_uid, path)
    return found


def sphere_mask(
    spatial_shape: Sequence[int],
    affine_ras: Any,
    nodules: Iterable[Mapping[str, Any]],
    label_each: bool = False,
) -> np.ndarray:
    """Mask of spheres at LUNA16 annotation rows, on the grid of a loaded scan.

    For users with LUNA16 only (no outlines): each ``annotations.csv`` row becomes a ball of its
    ``diameter_mm`` around ``(coordX, coordY, coordZ)``. Distances are measured in world mm, so a ball stays
    round on anisotropic or oblique grids.

    Args:
        spatial_shape: ``(X, Y, Z)`` of the loaded image.
        affine_ras: its voxel -> RAS affine (``MetaTensor.affine``).
        nodules: rows with ``coordX, coordY, coordZ`` (LPS mm) and ``diameter_mm``.
        label_each: label the n-th row's ball ``n`` (uint16) instead of 1 (uint8).

    Returns:
        ``(X, Y, Z)`` mask; rows outside the image leave it untouched.

    Examples:
        A 10 mm nodule in a 1 mm grid whose voxel (0, 0, 0) is at LPS (0, 0, 0):

        >>> affine = np.diag([-1.0, -1.0, 1.0, 1.0])  # RAS affine of an LPS-ordered grid
        >>> row = {"coordX": 20.0, "coordY": 20.0, "coordZ": 20.0, "diameter_mm": 10.0}
        >>> m = sphere_mask((40, 40, 40), affine, [row])
        >>> int(m.sum()), int(m[20, 20, 20])  # about 4/3 pi 5^3 = 524 voxels
        (515, 1)
    """
    affine = np.asarray(
        affine_ras.detach().cpu().numpy() if hasattr(affine_ras, "detach") else affine_ras, float
    )
    shape = tuple(int(s) for s in spatial_shape)
    out = np.zeros(shape, dtype=np.uint16 if label_each else np.uint8)
    step_mm = np.linalg.norm(affine[:3, :3], axis=0)  # mm per voxel step along each axis
    for n, row in enumerate(nodules, start=1):
        centre_lps = np.array([float(row["coordX"]), float(row["coordY"]), float(row["coordZ"])])
        radius = float(row["diameter_mm"]) / 2.0
        centre = world_to_voxel(centre_lps, affine)[0]
        reach = np.ceil(radius / step_mm) + 1
        lo = np.maximum(np.floor(centre - reach), 0).astype(int)
        hi = np.minimum(np.ceil(centre + reach) + 1, shape).astype(int)
        if np.any(hi <= lo):
            continue
        grid = np.stack(
            np.meshgrid(*[np.arange(a, b) for a, b in zip(lo, hi, strict=True)], indexing="ij"), axis=-1
        ).reshape(-1, 3)
        world = voxel_to_world(grid, affine)
        ball = np.sum((world - centre_lps) ** 2, axis=1) <= radius * radius
        idx = tuple(grid[ball].T)
        out[idx] = n if label_each else 1
    return out


# ---------------------------------------------------------------------------------------------------------
# dataset preparation (the logic of scripts/prepare_lidc.py and scripts/prepare_luna16.py)
# ---------------------------------------------------------------------------------------------------------
def _save_label(mask: np.ndarray, affine_ras: np.ndarray, path: Path) -> None:
    """Write a label volume with the scan's RAS affine (what NIfTI stores), so it overlays the scan."""
    import nibabel as nib

    from lungcad_transforms.outputs import atomic_file

    labels = np.asarray(mask)
    # uint8 holds up to 255 nodules per scan; more (never seen in LIDC-IDRI) would need uint16
    dtype = np.uint8 if labels.max(initial=0) <= 255 else np.uint16
    img = nib.Nifti1Image(labels.astype(dtype), np.asarray(affine_ras, dtype=np.float64))
    img.set_qform(img.affine, code=1)
    img.set_sform(img.affine, code=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as tmp:
        nib.save(img, tmp)


def _split(
    entries: list[dict[str, Any]], val_fraction: float, test_fraction: float, seed: int
) -> dict[str, list]:
    """Seeded shuffle into training / validation / test (at least one training case)."""
    if not (0 <= val_fraction and 0 <= test_fraction and val_fraction + test_fraction < 1):
        raise ValueError("val_fraction and test_fraction must be >= 0 and add up to less than 1")
    order = np.random.default_rng(seed).permutation(len(entries))
    n = len(entries)
    n_test = min(int(round(n * test_fraction)), max(n - 1, 0))
    n_val = min(int(round(n * val_fraction)), max(n - 1 - n_test, 0))
    shuffled = [entries[i] for i in order]
    return {
        "training": shuffled[n_val + n_test :],
        "validation": shuffled[:n_val],
        "test": shuffled[n_val : n_val + n_test],
    }


def _write_dataset(
    out_dir: Path,
    cases: list[tuple[dict[str, Any], np.ndarray, np.ndarray]],
    rows: list[dict[str, Any]],
    val_fraction: float,
    test_fraction: float,
    seed: int,
    source: str,
) -> Path:
    """Labels, ``datalist.json`` and ``annotations.csv`` of prepared cases, written as one atomic folder."""
    import json

    from lungcad_transforms.outputs import atomic_dir, atomic_file
    from lungcad_transforms.writers import write_annotations_csv

    with atomic_dir(out_dir) as tmp:
        entries = []
        for entry, mask, affine in cases:
            rel = f"labels/{entry['seriesuid'].replace(os.sep, '_')}.nii.gz"
            _save_label(mask, affine, tmp / rel)
            entries.append({**entry, "label": rel})
        datalist = _split(entries, val_fraction, test_fraction, seed)
        datalist["source"] = source  # type: ignore[assignment]
        with atomic_file(tmp / "datalist.json") as f:
            f.write_text(json.dumps(datalist, indent=2) + "\n", encoding="utf-8")
        write_annotations_csv(rows, tmp / "annotations.csv")
    return out_dir / "datalist.json"


def _series_folder(image: Any) -> Path:
    return Path(image[0]).parent if isinstance(image, (list, tuple)) else Path(image)


def prepare_lidc_dataset(
    lidc_root: str | os.PathLike,
    out_dir: str | os.PathLike,
    level: float = 0.5,
    min_readers: int = 1,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    seed: int = 0,
) -> Path:
    """Consensus nodule masks for every LIDC-IDRI CT series under ``lidc_root``, and a MONAI datalist.

    Each CT series that has an LIDC XML (matched by SeriesInstanceUID anywhere under ``lidc_root``) gets
    ``<out_dir>/labels/<seriesuid>.nii.gz`` (50 %-consensus masks on the scan's grid, RAS affine; 0 is
    background and ``n`` the consensus of :attr:`LidcConsensus.nodules` ``[n - 1]``, so a training pipeline
    can sample every nodule equally and still binarise with ``label > 0``),
    an entry in ``<out_dir>/datalist.json`` ("training" / "validation" / "test"; ``image`` is the DICOM
    series, left where it is) and one row per nodule with a consensus in the scan in
    ``<out_dir>/annotations.csv`` (LUNA16 form, centred on the consensus). Series without XML, and series
    that fail to load, are logged and left out. The folder is written atomically.

    Args:
        lidc_root: the LIDC-IDRI download (DICOM series at any depth, XML files beside them or elsewhere).
        out_dir: the prepared dataset folder (replaced if it exists).
        level, min_readers: as :func:`lidc_consensus` (LUNA16 kept nodules of 3 or more readers).
        val_fraction, test_fraction, seed: the seeded split.

    Returns:
        the path of ``datalist.json``.

    Raises:
        InputError: no CT series with an LIDC XML under ``lidc_root``.

    Examples:
        >>> prepare_lidc_dataset("/data/LIDC-IDRI", "/data/lidc_prepared")  # doctest: +SKIP
        PosixPath('/data/lidc_prepared/datalist.json')
    """
    from lungcad_transforms.io import find_images, load_image

    # absolute, so the datalist's image paths do not depend on the folder the script was run from
    lidc_root, out_dir = Path(lidc_root).resolve(), Path(out_dir)
    xml_for = find_lidc_xml(lidc_root)
    cases, rows = [], []
    for entry in find_images(lidc_root):
        uid = entry["seriesuid"]
        if entry.get("modality") not in ("CT", ""):
            continue
        if uid not in xml_for:
            logger.info(
                "%s: no LIDC XML for series %s: left out",
                entry["image"] if isinstance(entry["image"], str) else entry["image"][0],
                uid,
            )
            continue
        try:
            image = load_image(entry)
            consensus = lidc_consensus(
                xml_for[uid], _series_folder(entry["image"]), image, level=level, min_readers=min_readers
            )
        except InputError as err:
            logger.error("series %s left out: %s", uid, err)
            continue
        kept = [n for n in consensus.nodules if n.consensus_voxels]
        logger.info(
            "series %s: %d nodule(s) with a consensus in the scan (%d outlined in the XML)",
            uid,
            len(kept),
            len(consensus.nodules),
        )
        cases.append(({"image": entry["image"], "seriesuid": uid}, consensus.labels, consensus.affine))
        rows.extend(n.to_row(uid) for n in kept)
    if not cases:
        raise InputError(lidc_root, "holds no CT series with an LIDC-IDRI XML annotation file")
    return _write_dataset(out_dir, cases, rows, val_fraction, test_fraction, seed, f"LIDC-IDRI {lidc_root}")


def prepare_luna16_dataset(
    luna16_root: str | os.PathLike,
    annotations: str | os.PathLike,
    out_dir: str | os.PathLike,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    seed: int = 0,
) -> Path:
    """Sphere nodule masks for LUNA16 scans (``subset*/<seriesuid>.mhd``) from ``annotations.csv``.

    Each scan gets ``<out_dir>/labels/<seriesuid>.nii.gz`` (:func:`sphere_mask` of its annotation rows on
    the scan's grid, the n-th row of the scan labelled ``n``), an entry in ``datalist.json`` and its rows
    copied to ``<out_dir>/annotations.csv``.
    Scans without nodules are kept (they teach the network what is not a nodule).

    Args:
        luna16_root: folder holding the ``.mhd`` scans (any depth).
        annotations: LUNA16 ``annotations.csv``.
        out_dir: the prepared dataset folder (replaced if it exists).
        val_fraction, test_fraction, seed: the seeded split.

    Raises:
        InputError: no MetaImage scan under ``luna16_root``, or a malformed annotations file.

    Examples:
        >>> prepare_luna16_dataset("/data/LUNA16", "/data/LUNA16/annotations.csv", "/data/luna16_prepared")  # doctest: +SKIP
        PosixPath('/data/luna16_prepared/datalist.json')
    """
    from lungcad_transforms.coords import read_annotations
    from lungcad_transforms.io import find_images, load_image

    luna16_root, out_dir = Path(luna16_root).resolve(), Path(out_dir)
    table = read_annotations(annotations)
    by_uid: dict[str, list[dict[str, Any]]] = {}
    for row in table:
        by_uid.setdefault(row["seriesuid"], []).append(row)
    cases, rows = [], []
    for entry in find_images(luna16_root):
        image_path = entry["image"]
        if not (isinstance(image_path, str) and image_path.lower().endswith((".mhd", ".mha"))):
            continue
        uid = entry["seriesuid"]
        try:
            image = load_image(entry)
        except InputError as err:
            logger.error("scan %s left out: %s", uid, err)
            continue
        affine = np.asarray(image.affine, dtype=np.float64)
        nodules = by_uid.get(uid, [])
        mask = sphere_mask(image.shape[1:], affine, nodules, label_each=True)
        cases.append(({"image": image_path, "seriesuid": uid}, mask, affine))
        rows.extend(nodules)
        logger.info("scan %s: %d nodule sphere(s)", uid, len(nodules))
    if not cases:
        raise InputError(luna16_root, "holds no LUNA16 MetaImage scan (.mhd)")
    return _write_dataset(out_dir, cases, rows, val_fraction, test_fraction, seed, f"LUNA16 {luna16_root}")
