"""DICOM series discovery and grouping: which files form one series, in which order, and why not."""

from __future__ import annotations

import os
import struct
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import itk
import numpy as np
import pydicom
from monai.data import ITKReader
from pydicom.errors import InvalidDicomError
from pydicom.uid import DeflatedExplicitVRLittleEndian

from lungcad_transforms.errors import InputError

__all__ = ["dicom_series_files", "dicom_series_slices", "ITKDicomSeriesReader"]


_DICOMDIR_SOP_CLASS = "1.2.840.10008.1.3.10"


_PIXEL_DATA_TAGS = {(0x7FE0, 0x0010), (0x7FE0, 0x0008), (0x7FE0, 0x0009)}


_LONG_LENGTH_VRS = {b"OB", b"OW", b"OF", b"OD", b"OL", b"OV", b"UN", b"SQ", b"UC", b"UR", b"UT"}


# geometry tolerances for one series: header values are decimal strings, rounded by the writer
_ORIENTATION_TOLERANCE = 1e-3


_SPACING_TOLERANCE_MM = 1e-3


_SLICE_GAP_RELATIVE_TOLERANCE = 0.1


@dataclass(frozen=True)
class _DicomSlice:
    """What one DICOM image file's header says, read without its pixel data."""

    path: Path
    series_uid: str
    sop_uid: str
    modality: str
    rows: int | None
    columns: int | None
    frames: int
    orientation: tuple[float, ...] | None
    position: tuple[float, float, float] | None
    pixel_spacing: tuple[float, float] | None
    instance_number: int | None
    pixel_bytes_declared: int | None  # None: encapsulated (compressed) pixel data, length not declared
    pixel_bytes_present: int

    @property
    def normal(self) -> np.ndarray | None:
        if self.orientation is None:
            return None
        return np.cross(np.asarray(self.orientation[:3]), np.asarray(self.orientation[3:]))


def _floats(value: Any, count: int) -> tuple[float, ...] | None:
    try:
        numbers = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        return None
    return numbers if len(numbers) == count and all(np.isfinite(numbers)) else None


def _pixel_element_lengths(
    fp, start: int, size: int, implicit_vr: bool, little_endian: bool
) -> tuple[int | None, int]:
    """(declared, present) byte counts of the pixel data element whose tag starts at ``start``.

    pydicom stopped before the pixel data (``stop_before_pixels``), so reading the element's own header
    tells whether the file holds all the bytes it declares: a cut-off file (a failed copy, a partial
    download) is caught here instead of ITK silently dropping the slice from the series.
    """
    fp.seek(start)
    head = fp.read(12)
    endian = "<" if little_endian else ">"
    if implicit_vr:
        (length,) = struct.unpack(endian + "I", head[4:8])
        value_start = start + 8
    elif head[4:6] in _LONG_LENGTH_VRS:
        (length,) = struct.unpack(endian + "I", head[8:12])
        value_start = start + 12
    else:
        (length,) = struct.unpack(endian + "H", head[6:8])
        value_start = start + 8
    present = max(size - value_start, 0)
    return (None if length == 0xFFFFFFFF else length), present


def _read_dicom_slice(path: Path) -> tuple[_DicomSlice | None, str]:
    """(slice, "") for a DICOM file holding an image; (None, why it is not one) otherwise."""
    try:
        with open(path, "rb") as fp:
            ds = pydicom.dcmread(fp, stop_before_pixels=True)
            header_end = fp.tell()
            size = os.fstat(fp.fileno()).st_size
            tag_bytes = fp.read(4)
            pixel_lengths: tuple[int | None, int] | None = None
            if len(tag_bytes) == 4:
                implicit_vr, little_endian = ds.original_encoding
                little = True if little_endian is None else bool(little_endian)
                group, element = struct.unpack(("<" if little else ">") + "HH", tag_bytes)
                if (group, element) in _PIXEL_DATA_TAGS:
                    pixel_lengths = _pixel_element_lengths(fp, header_end, size, bool(implicit_vr), little)
            elif ds.file_meta.get("TransferSyntaxUID") == DeflatedExplicitVRLittleEndian and "Rows" in ds:
                # pydicom inflated the dataset in memory, so the file position says nothing: trust Rows
                pixel_lengths = (None, 0)
    except InvalidDicomError:
        return None, "not a DICOM file"
    except Exception as err:  # noqa: BLE001 - pydicom raises many types on corrupt headers; all mean "skip"
        return None, f"unreadable DICOM header ({type(err).__name__}: {err})"
    sop_class = str(
        ds.get("SOPClassUID", "") or getattr(ds.get("file_meta", {}), "MediaStorageSOPClassUID", "")
    )
    if sop_class == _DICOMDIR_SOP_CLASS or "DirectoryRecordSequence" in ds:
        return None, "DICOMDIR (a media index, not an image)"
    if pixel_lengths is None:
        kind = (
            getattr(ds.get("SOPClassUID"), "name", "") or str(ds.get("Modality", "")) or "unknown SOP class"
        )
        return None, f"DICOM without pixel data ({kind})"
    orientation = _floats(ds.get("ImageOrientationPatient"), 6)
    position = _floats(ds.get("ImagePositionPatient"), 3)
    spacing = _floats(ds.get("PixelSpacing"), 2)
    try:
        frames = int(ds.get("NumberOfFrames", 1) or 1)
    except (TypeError, ValueError):
        frames = 1
    try:
        instance = int(ds.get("InstanceNumber"))
    except (TypeError, ValueError):
        instance = None  # only a tie-breaker for sorting
    return (
        _DicomSlice(
            path=path,
            series_uid=str(ds.get("SeriesInstanceUID", "") or "").strip(),
            sop_uid=str(ds.get("SOPInstanceUID", "") or "").strip(),
            modality=str(ds.get("Modality", "") or "").strip(),
            rows=int(ds.Rows) if ds.get("Rows") is not None else None,
            columns=int(ds.Columns) if ds.get("Columns") is not None else None,
            frames=frames,
            orientation=orientation,
            position=position,  # type: ignore[arg-type]
            pixel_spacing=spacing,  # type: ignore[arg-type]
            instance_number=instance,
            pixel_bytes_declared=pixel_lengths[0],
            pixel_bytes_present=pixel_lengths[1],
        ),
        "",
    )


def _slice_order(slices: Sequence[_DicomSlice]) -> list[_DicomSlice]:
    """Slices sorted along the slice normal (ITK takes the volume origin from the first file it is given)."""
    normal = slices[0].normal

    def key(item: _DicomSlice) -> tuple:
        along = (
            float(np.dot(item.position, normal)) if item.position is not None and normal is not None else 0.0
        )
        return (along, item.instance_number if item.instance_number is not None else 0, str(item.path))

    return sorted(slices, key=key)


def _series_label(series_uid: str) -> str:
    return f"series {series_uid}" if series_uid else "series without SeriesInstanceUID"


def _check_series(slices: Sequence[_DicomSlice], where: Path) -> list[_DicomSlice]:
    """Refuse a series that ITK would read into a wrong volume; return its slices in slice order."""
    label = _series_label(slices[0].series_uid)
    for item in slices:
        if item.pixel_bytes_declared is not None and item.pixel_bytes_present < item.pixel_bytes_declared:
            raise InputError(
                item.path,
                f"truncated DICOM file: pixel data has {item.pixel_bytes_present} of "
                f"{item.pixel_bytes_declared} bytes",
            )
        if item.rows is None or item.columns is None:
            raise InputError(item.path, "DICOM image without Rows/Columns")
        if item.pixel_spacing is None or min(item.pixel_spacing) <= 0:
            raise InputError(item.path, "missing or invalid PixelSpacing: the image has no physical size")
    sizes = sorted({(item.rows, item.columns) for item in slices})
    if len(sizes) > 1:
        raise InputError(where, f"{label} mixes slice sizes {sizes} (rows, columns)")
    spacings = np.array([item.pixel_spacing for item in slices])
    if np.ptp(spacings, axis=0).max() > _SPACING_TOLERANCE_MM:
        raise InputError(
            where, f"{label} mixes pixel spacings {sorted({tuple(s) for s in spacings.tolist()})}"
        )
    if len(slices) == 1:
        return list(slices)
    if any(item.frames > 1 for item in slices):
        raise InputError(where, f"{label} mixes multi-frame files with other files")
    if any(item.orientation is None or item.position is None for item in slices):
        missing = next(item for item in slices if item.orientation is None or item.position is None)
        raise InputError(missing.path, f"{label}: slice lacks ImageOrientationPatient/ImagePositionPatient")
    orientations = np.array([item.orientation for item in slices])
    if np.ptp(orientations, axis=0).max() > _ORIENTATION_TOLERANCE:
        raise InputError(where, f"{label} mixes slice orientations (ImageOrientationPatient differs)")
    ordered = _slice_order(slices)
    normal = ordered[0].normal
    along = np.array([np.dot(item.position, normal) for item in ordered])
    gaps = np.diff(along)
    typical_gap = float(np.median(gaps))
    if gaps.min() < _SPACING_TOLERANCE_MM:
        raise InputError(
            where, f"{label} has several slices at the same position (two acquisitions in one series?)"
        )
    if np.abs(gaps - typical_gap).max() > _SLICE_GAP_RELATIVE_TOLERANCE * typical_gap:
        raise InputError(
            where,
            f"{label} has uneven slice spacing ({gaps.min():.3g} to {gaps.max():.3g} mm): missing slices "
            "or mixed acquisitions",
        )
    return ordered


def dicom_series_files(
    ref: str | os.PathLike | Sequence[str | os.PathLike], seriesuid: str | None = None
) -> list[Path]:
    """The files of one DICOM series in slice order, checked for consistency.

    Args:
        ref: a DICOM series folder (its files directly inside), one DICOM file, or a list of files.
        seriesuid: which series to take when the folder holds several.

    Raises:
        InputError: no DICOM image there, several series and no (matching) ``seriesuid``, or a series
            with mixed size / spacing / orientation, uneven slice positions or a truncated file.

    Examples:
        >>> files = dicom_series_files("LIDC-IDRI-0003/1.3.6.../1.3.6...003264")  # doctest: +SKIP
        >>> len(files), files[0].name  # 11 slices, the lowest (most inferior) first  # doctest: +SKIP
        (11, '-204.000000.dcm')
    """
    return [item.path for item in _dicom_series(ref, seriesuid)]


def dicom_series_slices(
    ref: str | os.PathLike | Sequence[str | os.PathLike], seriesuid: str | None = None, largest: bool = False
) -> list[_DicomSlice]:
    """The header of each slice of one DICOM series (pixel data not read), in slice order, checked.

    The same grouping, ordering and checks as :func:`dicom_series_files` (so as :func:`load_image`):
    whatever reads geometry from the headers sees the slices of the volume that is loaded.

    Args:
        ref: a DICOM series folder (its files directly inside), one DICOM file, or a list of files.
        seriesuid: which series to take when the folder holds several.
        largest: with several series and no ``seriesuid``, take the one with most slices instead of
            refusing.

    Returns:
        one record per slice: ``path``, ``series_uid``, ``sop_uid``, ``position`` (LPS mm),
        ``orientation``, ``pixel_spacing`` (row, column mm), ``rows``, ``columns``, ``modality``.

    Raises:
        InputError: as :func:`dicom_series_files`.

    Examples:
        >>> slices = dicom_series_slices("LIDC-IDRI-0003/1.3.6.../1.3.6...003264")  # doctest: +SKIP
        >>> slices[0].position, slices[0].pixel_spacing  # doctest: +SKIP
        ((-166.0, -171.699997, -204.0), (0.820312, 0.820312))
    """
    return _dicom_series(ref, seriesuid, largest)


def _dicom_series(
    ref: str | os.PathLike | Sequence[str | os.PathLike], seriesuid: str | None, largest: bool = False
) -> list[_DicomSlice]:
    if isinstance(ref, (str, os.PathLike)):
        where = Path(ref)
        candidates = sorted(p for p in where.iterdir() if p.is_file()) if where.is_dir() else [where]
        explicit = not where.is_dir()
    else:
        candidates = [Path(p) for p in ref]
        if not candidates:
            raise InputError("<empty list>", "no DICOM files given")
        where = candidates[0].parent
        explicit = True
    series: dict[str, list[_DicomSlice]] = defaultdict(list)
    for path in candidates:
        if not path.is_file():
            raise InputError(path, "file does not exist")
        item, why = _read_dicom_slice(path)
        if item is None:
            if explicit:
                raise InputError(path, why)
            continue  # a folder may hold other things (RWV, XML annotations): only its images count
        series[item.series_uid].append(item)
    if not series:
        raise InputError(where, "no DICOM image files")
    if seriesuid:
        if seriesuid not in series:
            raise InputError(where, f"holds no DICOM series {seriesuid} (found: {', '.join(sorted(series))})")
        chosen = series[seriesuid]
    elif len(series) == 1 or largest:
        chosen = max(series.values(), key=len)
    else:
        raise InputError(
            where,
            f"mixes {len(series)} DICOM series ({', '.join(sorted(series))}); load the entries of find_images() "
            "one by one",
        )
    return _check_series(chosen, where)


class ITKDicomSeriesReader(ITKReader):
    """MONAI's :class:`~monai.data.ITKReader`, except that a list of DICOM files is read as one series.

    Plain ``ITKReader`` stacks a list of files as channels; this reader hands a list of two or more files
    to ITK's series reader, which builds one volume with the geometry of the DICOM headers. Give the files
    in slice order (as :func:`find_images` lists them). Anything else (a folder, one file) reads exactly as
    with ``ITKReader``.

    Examples:
        >>> from monai.transforms import LoadImage
        >>> load = LoadImage(reader=ITKDicomSeriesReader(), ensure_channel_first=True)  # doctest: +SKIP
        >>> load(["s/-204.0.dcm", "s/-201.5.dcm", "s/-199.0.dcm"]).shape  # doctest: +SKIP
        torch.Size([1, 512, 512, 3])
    """

    def read(self, data: Sequence[os.PathLike | str] | os.PathLike | str, **kwargs):
        if (
            isinstance(data, (list, tuple))
            and len(data) > 1
            and all(Path(f"{name}").is_file() for name in data)
        ):
            options = {**self.kwargs, **kwargs}
            return itk.imread([f"{name}" for name in data], **options)
        return super().read(data, **kwargs)
