"""The I/O boundary: find scans in a folder and load them as RAS MetaTensors."""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pydicom
import torch
from monai.data import ITKReader, MetaTensor
from monai.data.utils import affine_to_spacing, orientation_ras_lps
from monai.transforms import LoadImage, Orientation
from monai.utils import SpaceKeys, convert_to_numpy

from lungcad_transforms.data.dicom import (
    ITKDicomSeriesReader,
    _check_series,
    _dicom_series,
    _DicomSlice,
    _read_dicom_slice,
    _slice_order,
)
from lungcad_transforms.data.image_header import check_spacing_header, nifti_non_finite_count
from lungcad_transforms.errors import InputError

logger = logging.getLogger(__name__)

__all__ = ["VOLUME_SUFFIXES", "SOURCE_KEYS", "DICOM_UID_KEYS", "find_images", "load_image"]


VOLUME_SUFFIXES = (".nii.gz", ".nii", ".mhd", ".mha", ".nrrd", ".nhdr")


# data files that a .mhd / .nhdr header points at: found through their header, not images on their own
_COMPANION_SUFFIXES = (".raw", ".zraw", ".raw.gz")


_RAS_LABELS = (("L", "R"), ("P", "A"), ("I", "S"))


# what load_image keeps of the file's own grid, so that results can be written back on it (image_writer)
SOURCE_KEYS = ("source_affine", "source_axcodes", "source_shape")


# the DICOM identifiers a derived object (DICOM SEG, SR) must reference; "" for files that are not DICOM.
# The SOP Instance UIDs are one string joined by "\\" (DICOM's own multi-value separator): a list of
# per-scan length would not collate into a batch of scans with different slice counts.
DICOM_UID_KEYS = ("study_instance_uid", "series_instance_uid", "frame_of_reference_uid", "sop_instance_uids")


def _volume_suffix(path: Path) -> str:
    name = path.name.lower()
    return next((suffix for suffix in VOLUME_SUFFIXES if name.endswith(suffix)), "")


def _stem(path: Path) -> str:
    suffix = _volume_suffix(path)
    return path.name[: -len(suffix)] if suffix else path.stem


def find_images(folder: str | os.PathLike) -> list[dict[str, Any]]:
    """List the scans under ``folder`` (at any depth) as a MONAI datalist.

    DICOM files are grouped by SeriesInstanceUID (several series in one folder give several entries);
    files without pixel data (RWV, SR, RTSTRUCT), DICOMDIR, hidden files and non-image files are skipped
    with an INFO line on the ``"lungcad_transforms"`` loggers. NIfTI, MetaImage and NRRD files are one entry each.

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


@lru_cache(maxsize=1)
def _loader() -> LoadImage:
    # the reader is always given per call (below): a failure then raises ITK's own error instead of
    # LoadImage falling back to every other registered reader
    return LoadImage(reader="ITKReader", ensure_channel_first=True, image_only=True, dtype=np.float32)


@lru_cache(maxsize=1)
def _orientation() -> Orientation:
    return Orientation(axcodes="RAS", labels=_RAS_LABELS)


def _read(source: str | list[str], where: Path) -> MetaTensor:
    reader = ITKDicomSeriesReader() if isinstance(source, list) else ITKReader()
    try:
        return _loader()(source, reader=reader)
    except (RuntimeError, OSError, ValueError, KeyError) as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise InputError(where, f"cannot be read as an image: {first_line}") from err


def _validate_volume(image: MetaTensor, where: Path | str) -> None:
    shape = tuple(image.shape)
    if image.ndim == 3 and shape[0] == 1:
        raise InputError(where, f"is a 2-D image ({shape[1]} x {shape[2]}); a 3-D volume is needed")
    if image.ndim != 4 or shape[0] != 1:
        raise InputError(where, f"expected one 3-D volume, got array of shape {shape} (channels first)")
    spacing = affine_to_spacing(convert_to_numpy(image.affine, dtype=float), r=3, suppress_zeros=False)
    if not np.all(np.isfinite(spacing)) or np.any(spacing <= 0):
        raise InputError(where, f"invalid voxel spacing {spacing.tolist()}")
    if not bool(torch.isfinite(image.as_tensor()).all()):
        bad = int((~torch.isfinite(image.as_tensor())).sum())
        raise InputError(where, f"contains {bad} NaN or infinite voxel values")


# where an in-memory image without ``filename_or_obj`` is said to come from, in messages and in the metadata
IN_MEMORY_SOURCE = "<in-memory image>"

# DICOM identifiers as other producers name them in an image's metadata (MONAI Deploy's
# DICOMSeriesToVolumeOperator copies the DICOM keywords), for the DICOM_UID_KEYS an in-memory image keeps
_UID_ALIASES = {
    "study_instance_uid": ("StudyInstanceUID", "0020|000d"),
    "series_instance_uid": ("SeriesInstanceUID", "0020|000e"),
    "frame_of_reference_uid": ("FrameOfReferenceUID", "0020|0052"),
    "sop_instance_uids": (),
}


def _ras_affine(affine: np.ndarray, meta: Mapping[str, Any]) -> np.ndarray:
    """``affine`` as voxel index -> RAS mm, whatever ``meta["space"]`` it is declared in."""
    if SpaceKeys(str(meta.get("space", SpaceKeys.RAS))) != SpaceKeys.LPS:
        return affine
    # MONAI Deploy's DICOM conversion labels its volume LPS but sets the affine to the series'
    # nifti_affine_transform, which is already RAS: flipping it again would mirror the patient
    nifti = meta.get("nifti_affine_transform")
    if nifti is not None and np.allclose(convert_to_numpy(nifti, dtype=np.float64), affine):
        return affine
    return orientation_ras_lps(affine)


def _first_of(meta: Mapping[str, Any], keys: Sequence[str]) -> str:
    return next((str(meta[k]).strip() for k in keys if meta.get(k) not in (None, "")), "")


def _in_memory_volume(
    values: np.ndarray | torch.Tensor, meta: Mapping[str, Any] | None
) -> tuple[MetaTensor, str]:
    """An image already in memory as a ``(1, X, Y, Z)`` float32 RAS-affine ``MetaTensor`` (a copy) and its name."""
    given = dict(values.meta) if isinstance(values, MetaTensor) else {}
    given.update(meta or {})
    where = str(given.get("filename_or_obj") or IN_MEMORY_SOURCE)
    if isinstance(values, MetaTensor):
        affine = convert_to_numpy(values.affine, dtype=np.float64)
    elif given.get("affine") is not None:
        affine = convert_to_numpy(given["affine"], dtype=np.float64)
    else:
        raise InputError(
            where,
            "an array without metadata has no geometry: give a MetaTensor, or the array with its metadata "
            "(at least 'affine', voxel index -> mm)",
        )
    if affine.shape != (4, 4) or not np.all(np.isfinite(affine)):
        raise InputError(where, f"affine must be a finite 4x4 matrix, got shape {affine.shape}")
    array = values.as_tensor() if isinstance(values, MetaTensor) else torch.as_tensor(values)
    # a copy: the caller's image (and its metadata) are never changed by what follows
    array = array.detach().to(device="cpu", dtype=torch.float32, copy=True)
    channel_dim = given.get("original_channel_dim")
    if array.ndim == 3:  # a volume without channel (MONAI Deploy's DICOM volumes: "no_channel")
        array = array[None]
    elif array.ndim == 4 and isinstance(channel_dim, int) and channel_dim not in (0, -4):
        array = torch.movedim(array, channel_dim, 0)
    meta_out = {k: v for k, v in given.items() if k not in ("affine", "original_affine", "space")}
    ras = _ras_affine(affine, given)
    # the array as given is the grid results must be written back on (SOURCE_KEYS)
    meta_out.update({"original_affine": ras, "space": SpaceKeys.RAS, "original_channel_dim": "no_channel"})
    return MetaTensor(array, affine=torch.as_tensor(ras), meta=meta_out), where


def _dicom_uids(slices: Sequence[_DicomSlice]) -> dict[str, str]:
    """The UIDs of one series (``DICOM_UID_KEYS``), the SOP Instance UIDs in the order of ``slices``."""
    # ITK's series reader keeps no header (its MetaDataDictionary is empty for a series); the slice
    # records hold each SOP Instance UID, and the study and frame of reference are one per series:
    # the first file's two tags are read, nothing else
    first = pydicom.dcmread(
        slices[0].path, stop_before_pixels=True, specific_tags=["StudyInstanceUID", "FrameOfReferenceUID"]
    )
    return {
        "study_instance_uid": str(first.get("StudyInstanceUID", "") or ""),
        "series_instance_uid": slices[0].series_uid,
        "frame_of_reference_uid": str(first.get("FrameOfReferenceUID", "") or ""),
        "sop_instance_uids": "\\".join(item.sop_uid for item in slices),
    }


def _record_source(image: MetaTensor) -> None:
    """Keep the file's own grid in ``meta`` before the Orientation transform changes the array."""
    # ITKReader's own record of the file's grid (RAS), made before any transform ran
    affine = convert_to_numpy(image.meta.get("original_affine", image.affine), dtype=np.float64)
    image.meta["source_affine"] = affine
    image.meta["source_axcodes"] = "".join(nib.orientations.aff2axcodes(affine, labels=_RAS_LABELS))
    image.meta["source_shape"] = np.asarray(image.shape[1:], dtype=np.int64)


def load_image(
    ref: str | os.PathLike | Sequence[str] | Mapping[str, Any] | np.ndarray | torch.Tensor,
    meta: Mapping[str, Any] | None = None,
) -> MetaTensor:
    r"""Load one scan as a canonical RAS volume: the geometry contract of the I/O boundary.

    Whatever the format and the axis order on disk, every scan comes out the same way (loaded with
    MONAI ``LoadImage`` and ITK, ``ensure_channel_first=True``, then ``Orientation("RAS")``):

    - **array**: ``MetaTensor`` of shape ``(1, X, Y, Z)`` (channel first, one channel), float32. Index
      ``i`` grows towards the patient's right, ``j`` towards anterior, ``k`` towards superior (for an
      oblique scan: the nearest of these). CT is in HU (rescale slope/intercept applied; padding values
      such as -2048 or -3024 are kept as they are), PET in the units of the file.
    - **affine** (``.affine`` and ``meta["affine"]``): 4x4 float64, voxel index -> RAS mm. Convert to
      LUNA16 world (LPS) with :func:`lungcad_transforms.data.coords.voxel_to_world`, never by hand.
    - **spacing** (``.pixdim`` and ``meta["spacing"]``): mm per voxel along ``X, Y, Z`` (checked finite
      and positive).
    - **the file's own grid**, needed to write a result that overlays the input voxel by voxel
      (:func:`lungcad_transforms.data.image_writer.write_image` uses it):
      ``meta["source_affine"]`` (4x4 RAS affine of the file as stored, before the Orientation
      transform; ITK's ``original_affine``), ``meta["source_axcodes"]`` (its axis codes, e.g. ``"LPS"``
      for ITK / DICOM order, ``"RAS"`` for most NIfTI) and ``meta["source_shape"]`` (its ``(X, Y, Z)``
      shape in file order).
    - **identity**: ``meta["filename_or_obj"]`` (the folder or file loaded; for a file list, its first
      file), ``meta["seriesuid"]`` and ``meta["modality"]`` (as in :func:`find_images`).
    - **DICOM references** (``""`` for other formats, so a batch of mixed scans still collates):
      ``meta["study_instance_uid"]``, ``meta["series_instance_uid"]``,
      ``meta["frame_of_reference_uid"]`` and ``meta["sop_instance_uids"]``, the SOP Instance UIDs of
      the slices in the order of the source grid's third axis (``k = 0`` first), joined by ``"\\"``:
      what a DICOM SEG or SR derived from the scan must reference.

    **An image already in memory** (what MONAI Deploy's ``MonaiBundleInferenceOperator`` hands a bundle's
    preprocessing: a ``MetaTensor``, no channel, its affine and DICOM tags in ``meta``) goes through the
    same contract: a ``MetaTensor``, or a numpy / torch array with ``meta`` holding at least its
    ``affine``; ``(X, Y, Z)`` or ``(1, X, Y, Z)``. The affine is read in the space ``meta["space"]`` names
    (RAS by default; an LPS one is converted), the array as given is the source grid, the name is
    ``meta["filename_or_obj"]`` or ``"<in-memory image>"``, and the UIDs and modality come from ``meta``
    (``series_instance_uid`` or the DICOM keyword ``SeriesInstanceUID``, ``modality`` or ``Modality``, ...).
    The caller's array and metadata are not changed.

    Args:
        ref: an entry of :func:`find_images` (``{"image": ..., "seriesuid": ..., "modality": ...}``; its
            ``"image"`` may be an in-memory image, with its metadata under ``"meta"``), a DICOM series
            folder, a list of one series' DICOM files, a single DICOM file (a one-slice volume
            ``(1, X, Y, 1)``), a NIfTI / MetaImage / NRRD file, or an in-memory image.
        meta: the metadata of an in-memory ``ref`` given as a plain array (a ``MetaTensor`` brings its own;
            these keys are added to it). Ignored for files.

    Returns:
        the volume, with the metadata above.

    Raises:
        InputError: the path does not exist, cannot be read, is truncated, is a 2-D picture or has several
            channels, has missing or zero spacing, holds NaN/inf, or is a DICOM folder with several or
            inconsistent series; an in-memory array without an affine.

    Examples:
        >>> ct = load_image("LIDC-IDRI-0003/1.3.6.1.4.1.14519.5.2.1.6279.6001.1013.../1.3.6...003264")  # doctest: +SKIP
        >>> ct.shape, ct.meta["modality"], float(ct.min())  # doctest: +SKIP
        (torch.Size([1, 512, 512, 11]), 'CT', -2048.0)
        >>> ct.meta["source_axcodes"], tuple(ct.meta["source_shape"])  # ITK reads DICOM in LPS order  # doctest: +SKIP
        ('LPS', (512, 512, 11))
        >>> len(ct.meta["sop_instance_uids"].split("\\"))  # doctest: +SKIP
        11
    """
    seriesuid: str | None = None
    modality: str | None = None
    if isinstance(ref, Mapping):
        if "image" not in ref:
            raise InputError(str(ref.get("seriesuid", "<entry>")), "datalist entry has no 'image' key")
        seriesuid, modality = ref.get("seriesuid") or None, ref.get("modality")
        source = ref["image"]
        meta = ref.get("meta", meta)
    else:
        source = ref

    if isinstance(source, (np.ndarray, torch.Tensor)):
        image, name = _in_memory_volume(source, meta)
        _validate_volume(image, name)
        _record_source(image)
        image = _orientation()(image)
        given = image.meta
        image.meta["filename_or_obj"] = name
        image.meta["seriesuid"] = (
            seriesuid
            or str(given.get("seriesuid") or "")
            or _first_of(given, ("series_instance_uid", *_UID_ALIASES["series_instance_uid"]))
            or "in_memory"
        )
        image.meta["modality"] = modality or _first_of(given, ("modality", "Modality", "0008|0060"))
        image.meta.update({key: _first_of(given, (key, *aliases)) for key, aliases in _UID_ALIASES.items()})
        return image

    dicom_slices: list[_DicomSlice] = []
    if isinstance(source, (list, tuple)):
        files = [Path(f) for f in source]
        slices = _dicom_series(files, seriesuid)
        image = _read(
            [str(item.path) for item in slices] if len(slices) > 1 else str(slices[0].path), files[0]
        )
        where = slices[0].path
        found_uid, found_modality = slices[0].series_uid, slices[0].modality
        dicom_slices = slices
    else:
        where = Path(source)
        if not where.exists():
            raise InputError(where, "does not exist")
        if where.is_dir():
            slices = _dicom_series(where, seriesuid)
            files = [str(item.path) for item in slices]
            image = _read(files if len(files) > 1 else files[0], where)
            found_uid, found_modality = slices[0].series_uid, slices[0].modality
            dicom_slices = slices
        elif _volume_suffix(where):
            check_spacing_header(where, _volume_suffix(where))
            if where.name.lower().endswith((".nii", ".nii.gz")):
                bad = nifti_non_finite_count(where)
                if bad:
                    raise InputError(where, f"contains {bad} NaN or infinite voxel values")
            image = _read(str(where), where)
            found_uid, found_modality = _stem(where), ""
        else:
            item, why = _read_dicom_slice(where)
            if item is not None:
                _check_series([item], where)
                found_uid, found_modality = item.series_uid, item.modality
                dicom_slices = [item]
            elif why != "not a DICOM file":
                raise InputError(where, why)
            else:
                found_uid, found_modality = where.stem, ""
            # a non-DICOM file (PNG, JPEG, ...) is read as ITK can, then refused below when it is 2-D
            image = _read(str(where), where)

    _validate_volume(image, where)
    _record_source(image)
    image = _orientation()(image)
    image.meta["filename_or_obj"] = str(where)
    image.meta["seriesuid"] = seriesuid or found_uid or _stem(where)
    image.meta["modality"] = modality or found_modality
    image.meta.update(_dicom_uids(dicom_slices) if dicom_slices else dict.fromkeys(DICOM_UID_KEYS, ""))
    return image
