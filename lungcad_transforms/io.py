"""Finding scans in a folder and loading them as canonical RAS volumes.

:func:`find_images` turns a folder (any depth) into a MONAI datalist: one entry per DICOM series
(grouped by SeriesInstanceUID, read with pydicom headers only) and one per NIfTI, MetaImage or NRRD file.
:func:`load_image` loads one entry through MONAI ``LoadImage`` with ITK and ``Orientation("RAS")``, and
refuses what a CAD run must not silently work on: truncated or mixed DICOM series, 2-D pictures, missing
spacing, NaN. :class:`ValidateCT` / :class:`ValidateCTd` check that a loaded image can be a CT in HU.

What an entry's ``"image"`` holds:

- a DICOM series stored alone in its folder (the usual layout): that folder, as a ``str``; plain MONAI
  ``LoadImage(reader="ITKReader")`` reads it too;
- a DICOM series sharing its folder with other series (or spread over several folders): the ``list`` of
  its files in slice order; :func:`load_image` and :class:`ITKDicomSeriesReader` read such a list as one
  volume (plain ``ITKReader`` would stack the files as channels);
- a single volume file (``.nii``, ``.nii.gz``, ``.mhd``, ``.mha``, ``.nrrd``, ``.nhdr``): its path.
"""

from __future__ import annotations

import logging
import os
import re
import struct
from collections import defaultdict
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import itk
import nibabel as nib
import numpy as np
import pydicom
import torch
from monai.config import KeysCollection, NdarrayOrTensor
from monai.data import ITKReader, MetaTensor
from monai.transforms import LoadImage, MapTransform, Orientation, Transform
from monai.utils import TransformBackends
from nibabel.openers import ImageOpener
from pydicom.errors import InvalidDicomError
from pydicom.uid import DeflatedExplicitVRLittleEndian

from lungcad_transforms.errors import InputError

__all__ = [
    "VOLUME_SUFFIXES",
    "ITKDicomSeriesReader",
    "find_images",
    "load_image",
    "dicom_series_files",
    "ValidateCT",
    "ValidateCTd",
    "ValidateCTD",
    "ValidateCTDict",
]

logger = logging.getLogger("lungcad")

VOLUME_SUFFIXES = (".nii.gz", ".nii", ".mhd", ".mha", ".nrrd", ".nhdr")
# data files that a .mhd / .nhdr header points at: found through their header, not images on their own
_COMPANION_SUFFIXES = (".raw", ".zraw", ".raw.gz")
_DICOMDIR_SOP_CLASS = "1.2.840.10008.1.3.10"
_PIXEL_DATA_TAGS = {(0x7FE0, 0x0010), (0x7FE0, 0x0008), (0x7FE0, 0x0009)}
_LONG_LENGTH_VRS = {b"OB", b"OW", b"OF", b"OD", b"OL", b"OV", b"UN", b"SQ", b"UC", b"UR", b"UT"}
_RAS_LABELS = (("L", "R"), ("P", "A"), ("I", "S"))
# geometry tolerances for one series: header values are decimal strings, rounded by the writer
_ORIENTATION_TOLERANCE = 1e-3
_SPACING_TOLERANCE_MM = 1e-3
_SLICE_GAP_RELATIVE_TOLERANCE = 0.1


def _volume_suffix(path: Path) -> str:
    name = path.name.lower()
    return next((suffix for suffix in VOLUME_SUFFIXES if name.endswith(suffix)), "")


def _stem(path: Path) -> str:
    suffix = _volume_suffix(path)
    return path.name[: -len(suffix)] if suffix else path.stem


# ---------------------------------------------------------------------------------------------------- DICOM


@dataclass(frozen=True)
class _DicomSlice:
    """What one DICOM image file's header says, read without its pixel data."""

    path: Path
    series_uid: str
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


def _dicom_series(
    ref: str | os.PathLike | Sequence[str | os.PathLike], seriesuid: str | None
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
    elif len(series) == 1:
        chosen = next(iter(series.values()))
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


# ---------------------------------------------------------------------------------------------- discovery


def find_images(folder: str | os.PathLike) -> list[dict[str, Any]]:
    """List the scans under ``folder`` (at any depth) as a MONAI datalist.

    DICOM files are grouped by SeriesInstanceUID (several series in one folder give several entries);
    files without pixel data (RWV, SR, RTSTRUCT), DICOMDIR, hidden files and non-image files are skipped
    with an INFO line on the ``"lungcad"`` logger. NIfTI, MetaImage and NRRD files are one entry each.

    Args:
        folder: the folder to search (a single image file is accepted too).

    Returns:
        entries sorted by location then series id, each ``{"image": str | list[str], "seriesuid": str,
        "modality": str}``: see the module docstring for what ``"image"`` holds. ``seriesuid`` is the
        DICOM SeriesInstanceUID, or for a file its name without extension (when two files share a name,
        prefixed with as many parent folder names as tell them apart, joined by ``_``); ``modality`` is the DICOM Modality
        (``"CT"``, ``"PT"``, ...) or ``""`` when unknown.

    Raises:
        InputError: the folder does not exist or holds no image.

    Examples:
        >>> entries = find_images("NSCLC-Radiogenomics/R01-005")  # doctest: +SKIP
        >>> [(e["modality"], len(e["seriesuid"]) > 0) for e in entries]  # doctest: +SKIP
        [('CT', True), ('PT', True)]
    """
    root = Path(folder)
    if not root.exists():
        raise InputError(root, "does not exist")
    files = [root] if root.is_file() else _walk_files(root)
    series: dict[str, list[_DicomSlice]] = defaultdict(list)
    volumes: list[Path] = []
    for path in files:
        if _volume_suffix(path):
            volumes.append(path)
            continue
        if path.name.lower().endswith(_COMPANION_SUFFIXES):
            continue
        item, why = _read_dicom_slice(path)
        if item is None:
            logger.info("find_images: skipping %s: %s", path, why)
            continue
        # a file without SeriesInstanceUID is a series on its own
        series[item.series_uid or f"file:{path}"].append(item)

    entries: list[tuple[str, dict[str, Any]]] = []
    image_dirs: dict[Path, set[str]] = defaultdict(set)
    for key, slices in series.items():
        for item in slices:
            image_dirs[item.path.parent].add(key)
    for key, slices in series.items():
        ordered = (
            _slice_order(slices)
            if all(s.position is not None for s in slices)
            else sorted(slices, key=lambda s: (s.instance_number or 0, str(s.path)))
        )
        folders = {item.path.parent for item in ordered}
        alone = len(folders) == 1 and image_dirs[next(iter(folders))] == {key}
        if key.startswith("file:"):
            image: str | list[str] = str(ordered[0].path)
            seriesuid = ordered[0].path.stem
        else:
            if alone:
                image = str(next(iter(folders)))
            elif len(ordered) == 1:
                image = str(ordered[0].path)  # ITK reads a lone DICOM file as a one-slice volume
            else:
                image = [str(item.path) for item in ordered]
            seriesuid = key
        location = image if isinstance(image, str) else image[0]
        entries.append((location, {"image": image, "seriesuid": seriesuid, "modality": ordered[0].modality}))

    for path, seriesuid in zip(volumes, _unique_file_ids(volumes), strict=True):
        entries.append((str(path), {"image": str(path), "seriesuid": seriesuid, "modality": ""}))

    if not entries:
        raise InputError(root, "holds no DICOM series, NIfTI, MetaImage or NRRD image")
    entries.sort(key=lambda pair: (pair[0], pair[1]["seriesuid"]))
    return [entry for _, entry in entries]


def _unique_file_ids(paths: Sequence[Path]) -> list[str]:
    """File stems as series ids; where stems collide, prefix the fewest parent folders that tell them apart."""
    ids = [_stem(path) for path in paths]
    for stem in {stem for stem in ids if ids.count(stem) > 1}:
        group = [i for i, other in enumerate(ids) if other == stem]
        depth = 1
        while True:
            labels = ["_".join([*paths[i].parent.parts[-depth:], stem]) for i in group]
            if len(set(labels)) == len(labels) or depth > max(len(paths[i].parts) for i in group):
                break
            depth += 1
        for i, label in zip(group, labels, strict=True):
            ids[i] = label.lstrip(os.sep).replace(os.sep, "_")
    return ids


def _walk_files(root: Path) -> list[Path]:
    found = []
    for directory, subdirs, names in os.walk(root):
        # hidden folders include the temporary siblings of outputs being written (atomic_dir)
        subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
        for name in sorted(names):
            if name.startswith("."):
                logger.info("find_images: skipping hidden file %s", Path(directory) / name)
                continue
            found.append(Path(directory) / name)
    return found


# ---------------------------------------------------------------------------------------------- loading


@lru_cache(maxsize=1)
def _loader() -> LoadImage:
    # the reader is always given per call (below): a failure then raises ITK's own error instead of
    # LoadImage falling back to every other registered reader
    return LoadImage(reader="ITKReader", ensure_channel_first=True, image_only=True, dtype=np.float32)


@lru_cache(maxsize=1)
def _orientation() -> Orientation:
    return Orientation(axcodes="RAS", labels=_RAS_LABELS)


def _header_text(path: Path, limit: int = 65536) -> list[str]:
    with open(path, "rb") as handle:
        return handle.read(limit).decode("latin-1").splitlines()


def _check_spacing_header(path: Path) -> None:
    """Refuse a volume file whose header has no usable voxel spacing.

    ITK (and nibabel) quietly replace a zero or absent spacing by 1 mm, which would make every size and
    distance downstream wrong, so the raw header is read here before ITK sees the file.
    """
    suffix = _volume_suffix(path)
    if suffix in (".nii", ".nii.gz"):
        try:
            with ImageOpener(path) as handle:
                header = nib.Nifti1Header.from_fileobj(handle, check=False)
                if int(header["sizeof_hdr"]) != 348:
                    handle.seek(0)
                    header = nib.Nifti2Header.from_fileobj(handle, check=False)
        except Exception as err:  # noqa: BLE001 - gzip, struct and nibabel errors all mean "cannot read"
            raise InputError(path, f"unreadable NIfTI header ({type(err).__name__}: {err})") from err
        ndim = int(header["dim"][0])
        pixdim = np.asarray(header["pixdim"][1 : 1 + min(max(ndim, 1), 3)], dtype=float)
        if not np.all(np.isfinite(pixdim)) or np.any(pixdim <= 0):
            raise InputError(path, f"invalid voxel spacing in the NIfTI header: pixdim {pixdim.tolist()}")
    elif suffix in (".mhd", ".mha"):
        fields = dict(line.split("=", 1) for line in _header_text(path) if "=" in line)
        fields = {key.strip(): value.strip() for key, value in fields.items()}
        spacing = fields.get("ElementSpacing") or fields.get("ElementSize")
        if spacing is None:
            raise InputError(path, "MetaImage header has no ElementSpacing: the voxel size is unknown")
        _require_positive(path, spacing.split(), "ElementSpacing")
    elif suffix in (".nrrd", ".nhdr"):
        fields = {}
        for line in _header_text(path)[1:]:
            if not line.strip():
                break  # a blank line ends a NRRD header
            if ":" in line and not line.startswith("#"):
                key, value = line.split(":", 1)
                fields[key.strip().lower()] = value.strip().lstrip("=").strip()
        if "space directions" in fields:
            vectors = re.findall(r"\(([^)]*)\)", fields["space directions"])
            lengths = [float(np.linalg.norm([float(v) for v in vector.split(",")])) for vector in vectors]
            _require_positive(path, lengths, "space directions")
        elif "spacings" in fields:
            _require_positive(path, [v for v in fields["spacings"].split() if v.lower() != "nan"], "spacings")
        else:
            raise InputError(
                path, "NRRD header has neither 'space directions' nor 'spacings': voxel size unknown"
            )


def _nifti_non_finite_count(path: Path) -> int:
    """How many NaN / infinite voxels a floating-point NIfTI holds (0 for integer data).

    ITK's NIfTI reader turns NaN and infinity into 0 without a word, so the check that
    :func:`load_image` runs on the loaded array cannot see them: they are counted here with nibabel,
    a block of slices at a time to bound memory on large scans.
    """
    image = nib.load(path)
    if not np.issubdtype(image.get_data_dtype(), np.floating):
        return 0
    proxy = image.dataobj
    shape = proxy.shape
    if len(shape) < 3:
        return int((~np.isfinite(np.asarray(proxy))).sum())
    count = 0
    for start in range(0, shape[2], 16):
        block = np.asarray(proxy[:, :, start : start + 16])
        count += int((~np.isfinite(block)).sum())
    return count


def _require_positive(path: Path, values: Sequence[Any], name: str) -> None:
    try:
        numbers = [float(v) for v in values]
    except ValueError:
        raise InputError(path, f"{name} is not numeric: {list(values)}") from None
    if not numbers or not all(np.isfinite(numbers)) or min(numbers) <= 0:
        raise InputError(path, f"invalid voxel spacing: {name} {numbers}")


def _read(source: str | list[str], where: Path) -> MetaTensor:
    reader = ITKDicomSeriesReader() if isinstance(source, list) else ITKReader()
    try:
        return _loader()(source, reader=reader)
    except (RuntimeError, OSError, ValueError, KeyError) as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise InputError(where, f"cannot be read as an image: {first_line}") from err


def _validate_volume(image: MetaTensor, where: Path) -> None:
    shape = tuple(image.shape)
    if image.ndim == 3 and shape[0] == 1:
        raise InputError(where, f"is a 2-D image ({shape[1]} x {shape[2]}); a 3-D volume is needed")
    if image.ndim != 4 or shape[0] != 1:
        raise InputError(where, f"expected one 3-D volume, got array of shape {shape} (channels first)")
    spacing = np.linalg.norm(np.asarray(image.affine, dtype=float)[:3, :3], axis=0)
    if not np.all(np.isfinite(spacing)) or np.any(spacing <= 0):
        raise InputError(where, f"invalid voxel spacing {spacing.tolist()}")
    if not bool(torch.isfinite(image.as_tensor()).all()):
        bad = int((~torch.isfinite(image.as_tensor())).sum())
        raise InputError(where, f"contains {bad} NaN or infinite voxel values")


def load_image(ref: str | os.PathLike | Sequence[str] | Mapping[str, Any]) -> MetaTensor:
    """Load one scan as a canonical RAS volume: a ``MetaTensor`` of shape ``(1, X, Y, Z)``, float32.

    Loads through MONAI ``LoadImage`` with ITK (``ensure_channel_first=True``) and ``Orientation("RAS")``,
    so ``.affine`` maps voxel indices to RAS mm (convert to LUNA16 world with
    :func:`lungcad_transforms.coords.voxel_to_world`). CT comes out in HU (rescale slope/intercept applied;
    padding values such as -2048 or -3024 are kept as they are), PET in the units of the file.

    Args:
        ref: an entry of :func:`find_images` (``{"image": ..., "seriesuid": ..., "modality": ...}``), a
            DICOM series folder, a list of one series' DICOM files, a single DICOM file (a one-slice
            volume ``(1, X, Y, 1)``), or a NIfTI / MetaImage / NRRD file.

    Returns:
        the volume; ``meta`` carries ``filename_or_obj`` (the folder or file loaded; for a file list, its
        first file), ``seriesuid`` and ``modality`` (as in :func:`find_images`).

    Raises:
        InputError: the path does not exist, cannot be read, is truncated, is a 2-D picture or has several
            channels, has missing or zero spacing, holds NaN/inf, or is a DICOM folder with several or
            inconsistent series.

    Examples:
        >>> ct = load_image("LIDC-IDRI-0003/1.3.6.1.4.1.14519.5.2.1.6279.6001.1013.../1.3.6...003264")  # doctest: +SKIP
        >>> ct.shape, ct.meta["modality"], float(ct.min())  # doctest: +SKIP
        (torch.Size([1, 512, 512, 11]), 'CT', -2048.0)
    """
    seriesuid: str | None = None
    modality: str | None = None
    if isinstance(ref, Mapping):
        if "image" not in ref:
            raise InputError(str(ref.get("seriesuid", "<entry>")), "datalist entry has no 'image' key")
        seriesuid, modality = ref.get("seriesuid") or None, ref.get("modality")
        source = ref["image"]
    else:
        source = ref

    if isinstance(source, (list, tuple)):
        files = [Path(f) for f in source]
        slices = _dicom_series(files, seriesuid)
        image = _read(
            [str(item.path) for item in slices] if len(slices) > 1 else str(slices[0].path), files[0]
        )
        where = slices[0].path
        found_uid, found_modality = slices[0].series_uid, slices[0].modality
    else:
        where = Path(source)
        if not where.exists():
            raise InputError(where, "does not exist")
        if where.is_dir():
            slices = _dicom_series(where, seriesuid)
            files = [str(item.path) for item in slices]
            image = _read(files if len(files) > 1 else files[0], where)
            found_uid, found_modality = slices[0].series_uid, slices[0].modality
        elif _volume_suffix(where):
            _check_spacing_header(where)
            if where.name.lower().endswith((".nii", ".nii.gz")):
                bad = _nifti_non_finite_count(where)
                if bad:
                    raise InputError(where, f"contains {bad} NaN or infinite voxel values")
            image = _read(str(where), where)
            found_uid, found_modality = _stem(where), ""
        else:
            item, why = _read_dicom_slice(where)
            if item is not None:
                _check_series([item], where)
                found_uid, found_modality = item.series_uid, item.modality
            elif why != "not a DICOM file":
                raise InputError(where, why)
            else:
                found_uid, found_modality = where.stem, ""
            # a non-DICOM file (PNG, JPEG, ...) is read as ITK can, then refused below when it is 2-D
            image = _read(str(where), where)

    _validate_volume(image, where)
    image = _orientation()(image)
    image.meta["filename_or_obj"] = str(where)
    image.meta["seriesuid"] = seriesuid or found_uid or _stem(where)
    image.meta["modality"] = modality or found_modality
    return image


# ---------------------------------------------------------------------------------------------- validation


class ValidateCT(Transform):
    """Refuse an image that cannot be a CT volume in Hounsfield units; pass a good one through unchanged.

    Checks, in order: a single-channel 3-D volume ``(1, X, Y, Z)``; a ``modality`` in the metadata, when
    present and not empty, equal to ``"CT"``; finite values; and HU-like values (somewhere below
    ``max_air_hu``: every chest CT has air in the lungs or around the body, an MR or a PET in SUV has none).

    Args:
        max_air_hu: the darkest voxel must be below this for the values to be HU. Default -500.

    Raises:
        InputError: naming ``meta["filename_or_obj"]`` and what is wrong.

    Examples:
        >>> ct = MetaTensor(torch.full((1, 8, 8, 4), -1000.0), meta={"modality": "CT"})
        >>> ValidateCT()(ct).shape
        torch.Size([1, 8, 8, 4])
        >>> ValidateCT()(MetaTensor(torch.ones(1, 8, 8, 4), meta={"modality": "MR", "filename_or_obj": "t1.nii"}))
        Traceback (most recent call last):
        ...
        lungcad_transforms.errors.InputError: t1.nii: modality is 'MR', not CT
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __init__(self, max_air_hu: float = -500.0) -> None:
        self.max_air_hu = max_air_hu

    def __call__(self, img: NdarrayOrTensor) -> NdarrayOrTensor:
        meta = img.meta if isinstance(img, MetaTensor) else {}
        where = str(meta.get("filename_or_obj", "") or "<array>")
        shape = tuple(img.shape)
        if len(shape) != 4 or shape[0] != 1:
            raise InputError(where, f"expected a single-channel 3-D volume (1, X, Y, Z), got shape {shape}")
        modality = str(meta.get("modality", "") or "").strip()
        if modality and modality.upper() != "CT":
            raise InputError(where, f"modality is {modality!r}, not CT")
        values = torch.as_tensor(img.as_tensor() if isinstance(img, MetaTensor) else img)
        finite = torch.isfinite(values)
        if not bool(finite.all()):
            raise InputError(where, f"contains {int((~finite).sum())} NaN or infinite values")
        darkest = float(values.min())
        if darkest >= self.max_air_hu:
            raise InputError(
                where,
                f"values are not CT Hounsfield units: nothing below {self.max_air_hu:g} (no air), minimum {darkest:g}",
            )
        return img


class ValidateCTd(MapTransform):
    """Dictionary-based :class:`ValidateCT`: checks each key's image, returns the data unchanged.

    Examples:
        >>> data = {"image": MetaTensor(torch.full((1, 8, 8, 4), -1000.0), meta={"modality": "CT"})}
        >>> ValidateCTd(keys="image")(data)["image"].shape
        torch.Size([1, 8, 8, 4])
    """

    backend = ValidateCT.backend

    def __init__(
        self, keys: KeysCollection, max_air_hu: float = -500.0, allow_missing_keys: bool = False
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.validator = ValidateCT(max_air_hu=max_air_hu)

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.validator(d[key])
        return d


ValidateCTD = ValidateCTDict = ValidateCTd
