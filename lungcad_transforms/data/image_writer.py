"""Image writers: NIfTI and MetaImage, on the input's own voxel grid or on a given geometry.

One family, one core: :func:`write_image` puts a result computed on a loaded (RAS) scan back on the
grid of the file the user gave (same shape, affine and axis order, so it overlays the input voxel by
voxel, as nnU-Net and lungmask write theirs); :func:`save_nifti` writes an array on a given RAS affine;
:func:`write_nifti` / :func:`write_metaimage` write a volume given as LPS spacing and origin (phantoms).
All write atomically.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.config import NdarrayOrTensor
from monai.data import MetaTensor
from monai.data.utils import affine_to_spacing
from monai.utils import convert_to_numpy

from lungcad_transforms.data.coords import affine_lps, lps_to_ras_affine, ras_to_lps_affine
from lungcad_transforms.errors import InputError
from lungcad_transforms.utils.atomic import atomic_file

__all__ = ["write_image", "to_source_grid", "save_nifti", "write_nifti", "write_metaimage"]


_NIFTI_SUFFIXES = (".nii", ".nii.gz")


_METAIMAGE_SUFFIXES = (".mha", ".mhd")


# how far (mm, per affine entry) a reoriented grid may sit from the source grid and still be that grid
_GRID_TOLERANCE = 1e-4


def _checked_volume(
    volume: Any, spacing: Any, origin_lps: Any, path: str | os.PathLike
) -> tuple[np.ndarray, tuple, tuple]:
    """Validate a volume and its geometry; bad ones raise InputError naming ``path``."""
    try:
        arr = np.asarray(volume)
    except Exception as exc:  # ragged lists and such
        raise InputError(path, f"volume is not an array: {exc}") from exc
    if arr.ndim != 3:
        raise InputError(path, f"volume must be 3-D (X, Y, Z), got shape {arr.shape}")
    if arr.size == 0:
        raise InputError(path, f"volume is empty (shape {arr.shape})")
    if arr.dtype == bool:
        arr = arr.astype(np.uint8)
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise InputError(path, f"volume must hold numbers, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.floating) and not np.isfinite(arr).all():
        raise InputError(path, "volume contains NaN or infinite values")
    try:
        sp = tuple(float(s) for s in spacing)
        org = tuple(float(o) for o in origin_lps)
    except (TypeError, ValueError) as exc:
        raise InputError(path, f"spacing and origin must be 3 numbers each: {exc}") from exc
    if len(sp) != 3 or not all(math.isfinite(s) and s > 0 for s in sp):
        raise InputError(path, f"spacing must be 3 positive finite numbers (mm), got {spacing}")
    if len(org) != 3 or not all(math.isfinite(o) for o in org):
        raise InputError(path, f"origin must be 3 finite numbers (mm), got {origin_lps}")
    return arr, sp, org


def _spatial(data: NdarrayOrTensor, what: str) -> np.ndarray:
    arr = convert_to_numpy(data)
    if arr.ndim == 4 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 3:
        raise ValueError(f"{what} must be (X, Y, Z) or (1, X, Y, Z), got shape {arr.shape}")
    return arr.astype(np.uint8) if arr.dtype == bool else arr


def _geometry(data: NdarrayOrTensor, like: MetaTensor | Mapping | None) -> tuple[Mapping, np.ndarray]:
    """(the metadata that names the source grid, the RAS affine of the grid ``data`` lies on)."""
    if like is None:
        like = data
    meta = like.meta if isinstance(like, MetaTensor) else (like if isinstance(like, Mapping) else {})
    if isinstance(data, MetaTensor):
        current = data.affine
    elif isinstance(like, MetaTensor):
        current = like.affine
    else:
        current = meta.get("affine")
    if current is None:
        raise ValueError("the grid of the data is unknown: give a MetaTensor, or like= with an 'affine'")
    return meta, convert_to_numpy(current, dtype=np.float64)


def to_source_grid(
    data: NdarrayOrTensor, like: MetaTensor | Mapping | None = None, mode: str = "nearest"
) -> tuple[np.ndarray, np.ndarray]:
    """Put a result computed on a loaded scan back on the grid of the file the scan came from.

    :func:`~lungcad_transforms.data.image_reader.load_image` reorients every scan to RAS and keeps the
    file's grid in ``meta["source_affine"]`` / ``meta["source_shape"]``. A result on the loaded grid is
    flipped and transposed back (nibabel's orientation arithmetic, as MONAI ``Orientation`` uses: exact,
    no interpolation); a result on any other grid (cropped, resampled) is resampled onto the source grid
    with MONAI ``SpatialResample``. Without source metadata the data stays on its own grid.

    Args:
        data: ``(X, Y, Z)`` or ``(1, X, Y, Z)``; a ``MetaTensor`` lies on its own ``affine``, an array or
            plain tensor on the grid of ``like``.
        like: the loaded scan (``MetaTensor``) or its ``meta``; defaults to ``data``'s own metadata.
        mode: interpolation when resampling is needed: ``"nearest"`` for labels, ``"bilinear"`` for maps.

    Returns:
        ``(array, affine)``: the ``(X, Y, Z)`` array in the source file's axis order (dtype kept, booleans
        as uint8) and the source file's RAS affine.

    Examples:
        A 2 x 3 x 4 scan stored in LPS order (ITK's), loaded as RAS (x and y flipped), put back:

        >>> ras = MetaTensor(torch.arange(24.0).reshape(1, 2, 3, 4), affine=torch.diag(torch.tensor([2.0, 2, 3, 1])))
        >>> source = np.array([[-2.0, 0, 0, 2], [0, -2, 0, 4], [0, 0, 3, 0], [0, 0, 0, 1]])
        >>> ras.meta.update(source_affine=source, source_shape=np.array([2, 3, 4]))
        >>> arr, affine = to_source_grid(ras)
        >>> bool(arr[0, 0, 0] == ras[0, 1, 2, 0]), bool((affine == source).all())
        (True, True)
    """
    import nibabel as nib

    meta, current = _geometry(data, like)
    arr = _spatial(data, "data")
    source, shape = meta.get("source_affine"), meta.get("source_shape")
    if source is None or shape is None:
        return arr, current
    source = convert_to_numpy(source, dtype=np.float64).reshape(4, 4)
    shape = tuple(int(n) for n in convert_to_numpy(shape).reshape(-1))
    ornt = nib.orientations.ornt_transform(
        nib.orientations.io_orientation(current), nib.orientations.io_orientation(source)
    )
    reoriented = nib.orientations.apply_orientation(arr, ornt)
    affine = current @ nib.orientations.inv_ornt_aff(ornt, arr.shape)
    if reoriented.shape == shape and np.allclose(affine, source, atol=_GRID_TOLERANCE):
        return np.ascontiguousarray(reoriented), source
    from monai.transforms import SpatialResample

    moving = MetaTensor(torch.as_tensor(arr[None], dtype=torch.float32), affine=torch.as_tensor(current))
    moved = SpatialResample(mode=mode, padding_mode="zeros", dtype=torch.float64)(
        moving, dst_affine=torch.as_tensor(source), spatial_size=shape
    )
    values = convert_to_numpy(moved)[0]
    if np.issubdtype(arr.dtype, np.integer):
        values = np.rint(values)
    return values.astype(arr.dtype), source


def write_image(
    data: NdarrayOrTensor,
    path: str | os.PathLike,
    like: MetaTensor | Mapping | None = None,
    *,
    dtype: Any = None,
    mode: str = "nearest",
    compress: bool = True,
) -> Path:
    """Write a result on the input's own voxel grid: NIfTI (``.nii``, ``.nii.gz``) or MetaImage (``.mha``, ``.mhd``).

    The file gets the shape, affine and axis order of the file the scan was loaded from (see
    :func:`to_source_grid`), so it overlays the user's input voxel by voxel in any viewer. DICOM input
    gets NIfTI or MetaImage output with the series' geometry (ITK's LPS slice order).

    Args:
        data: the result, ``(X, Y, Z)`` or ``(1, X, Y, Z)`` (a mask, a label map, a heatmap, a scan).
        path: the output file; its suffix picks the format.
        like: the loaded scan or its ``meta`` (default: ``data``'s own metadata).
        dtype: output dtype (``np.uint8`` for masks); ``None`` keeps the data's (booleans as uint8,
            64-bit integers as 32-bit when they fit).
        mode: interpolation, only used when ``data`` is not on the loaded scan's grid.
        compress: MetaImage only: zlib-compressed data.

    Raises:
        InputError: naming ``path`` when it is not a NIfTI / MetaImage name (checked before any work).

    Examples:
        >>> scan = load_image("lps_ordered_ct.nii.gz")  # doctest: +SKIP
        >>> mask = LungMask()(scan)  # on the RAS grid  # doctest: +SKIP
        >>> write_image(mask, "lungs.nii.gz", dtype=np.uint8)  # doctest: +SKIP
        PosixPath('lungs.nii.gz')
        >>> nib.load("lungs.nii.gz").shape == nib.load("lps_ordered_ct.nii.gz").shape  # doctest: +SKIP
        True
    """
    path = Path(path)
    is_nifti = _output_format(path) == "nifti"
    arr, affine = to_source_grid(data, like, mode)
    if dtype is not None:
        arr = arr.astype(dtype)
    return _write_nifti(arr, affine, path) if is_nifti else _write_metaimage(arr, affine, path, compress)


def _output_format(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(_NIFTI_SUFFIXES):
        return "nifti"
    if name.endswith(_METAIMAGE_SUFFIXES):
        return "metaimage"
    raise InputError(path, "output must be a NIfTI (.nii, .nii.gz) or MetaImage (.mha, .mhd) file")


def _nifti_ready(arr: np.ndarray) -> np.ndarray:
    if arr.dtype == bool:
        return arr.astype(np.uint8)
    if arr.dtype in (np.int64, np.uint64):
        # nibabel refuses 64-bit integers by default (few tools read them): use 32 bits when they fit
        info = np.iinfo(np.int32)
        fits = arr.size == 0 or (info.min <= arr.min() and arr.max() <= info.max)
        return arr.astype(np.int32) if fits else arr.astype(np.float64)
    return arr


def _write_nifti(arr: np.ndarray, affine_ras: np.ndarray, path: Path) -> Path:
    import nibabel as nib

    # NIfTI stores voxel -> RAS, the affine MONAI and load_image use: written as it is
    affine = np.asarray(affine_ras, dtype=np.float64)
    image = nib.Nifti1Image(_nifti_ready(np.asarray(arr)), affine)
    image.header.set_xyzt_units("mm")
    image.set_qform(affine, code=1)
    image.set_sform(affine, code=1)
    with atomic_file(path) as tmp:
        nib.save(image, tmp)
    return path


def _itk_ready(arr: np.ndarray) -> np.ndarray:
    # the pixel types ITK's Python wrapping provides
    if arr.dtype in (np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.float32, np.float64):
        return arr
    if arr.dtype == np.int8:
        return arr.astype(np.int16)
    if np.issubdtype(arr.dtype, np.integer):
        info = np.iinfo(np.int32)
        if arr.min() >= info.min and arr.max() <= info.max:
            return arr.astype(np.int32)
        return arr.astype(np.float64)
    return arr.astype(np.float32 if arr.dtype == np.float16 else np.float64)


def _write_metaimage(arr: np.ndarray, affine_ras: np.ndarray, path: Path, compress: bool) -> Path:
    import itk

    # MetaImage stores ITK's LPS physical space: origin, spacing and a direction matrix
    affine = ras_to_lps_affine(affine_ras)
    spacing = affine_to_spacing(affine, r=3, dtype=np.float64, suppress_zeros=False)
    image = itk.image_from_array(
        np.ascontiguousarray(_itk_ready(np.asarray(arr)).transpose(2, 1, 0))
    )  # ITK arrays are (z, y, x)
    image.SetSpacing(spacing.tolist())
    image.SetOrigin(affine[:3, 3].tolist())
    image.SetDirection(itk.matrix_from_array(np.ascontiguousarray(affine[:3, :3] / spacing)))
    if path.suffix.lower() == ".mha":
        with atomic_file(path) as tmp:
            itk.imwrite(image, str(tmp), compression=compress)
        return path
    # .mhd names its data file inside the header: write both under their final names in a
    # private folder, then move the data file and, last, the header
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.stem}.", dir=path.parent))
    moved: list[Path] = []
    try:
        itk.imwrite(image, str(staging / path.name), compression=compress)
        data_files = [f for f in staging.iterdir() if f.name != path.name]
        for f in data_files:
            os.replace(f, path.parent / f.name)
            moved.append(path.parent / f.name)
        os.replace(staging / path.name, path)
    except BaseException:
        for f in moved:
            f.unlink(missing_ok=True)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return path


def save_nifti(
    data: NdarrayOrTensor, affine_ras: NdarrayOrTensor, path: str | os.PathLike, dtype: Any = np.uint8
) -> Path:
    """Write a (X, Y, Z) or (1, X, Y, Z) array with its RAS affine as NIfTI, atomically.

    The array is written on the grid it lies on (the MetaTensor's affine: voxel -> RAS mm, which is what
    NIfTI stores), so the file lines up in world space with the scan it was computed from; to write on
    the input file's own grid instead, use :func:`write_image`.

    Examples:
        >>> save_nifti(np.ones((4, 4, 2), bool), np.diag([0.7, 0.7, 2.5, 1.0]), "/tmp/lungcad_example_mask.nii.gz").name
        'lungcad_example_mask.nii.gz'
    """
    path = Path(path)
    if not path.name.endswith(_NIFTI_SUFFIXES):
        raise InputError(path, "output must be a NIfTI file ending in .nii or .nii.gz")
    arr = convert_to_numpy(data)
    arr = arr[0] if arr.ndim == 4 else arr
    return _write_nifti(arr.astype(dtype), convert_to_numpy(affine_ras, dtype=np.float64), path)


def write_nifti(
    volume: Any, spacing: Sequence[float], origin_lps: Sequence[float], path: str | os.PathLike
) -> Path:
    """Write a volume as NIfTI-1 (``.nii`` or ``.nii.gz``), atomically.

    NIfTI stores RAS world coordinates, so the affine written is
    :func:`~lungcad_transforms.data.coords.lps_to_ras_affine` of the LPS grid; the array keeps its LPS
    index order. Both qform and sform are set (code 1, scanner), units mm. Booleans are written as
    uint8, 64-bit integers as 32-bit when they fit; other dtypes are kept.

    Examples:
        >>> from lungcad_transforms.apps.phantoms.ct import make_ct_phantom
        >>> ct = make_ct_phantom((64, 64, 32), seed=0)
        >>> write_nifti(ct.hu, ct.spacing, ct.origin_lps, "/tmp/lungcad_example_ct.nii.gz").name
        'lungcad_example_ct.nii.gz'
    """
    arr, sp, org = _checked_volume(volume, spacing, origin_lps, path)
    return _write_nifti(arr, lps_to_ras_affine(affine_lps(sp, org)), Path(path))


def write_metaimage(
    volume: Any,
    spacing: Sequence[float],
    origin_lps: Sequence[float],
    path: str | os.PathLike,
    compress: bool = True,
) -> Path:
    """Write a volume as MetaImage (``.mha`` single file, or ``.mhd`` header + ``.zraw``/``.raw`` data).

    MetaImage stores ITK's LPS physical space natively: origin, spacing and an identity direction. For
    ``.mhd`` the data file is moved into place before the header, so a reader never finds a header
    without its data.

    Examples:
        >>> from lungcad_transforms.apps.phantoms.ct import make_ct_phantom
        >>> ct = make_ct_phantom((64, 64, 32), seed=0)
        >>> write_metaimage(ct.hu, ct.spacing, ct.origin_lps, f"/tmp/lungcad_example_{ct.seriesuid}.mhd").suffix
        '.mhd'
    """
    path = Path(path)
    if path.suffix.lower() not in _METAIMAGE_SUFFIXES:
        raise ValueError(f"a MetaImage path ends in .mha or .mhd, got {path.name}")
    arr, sp, org = _checked_volume(volume, spacing, origin_lps, path)
    return _write_metaimage(arr, lps_to_ras_affine(affine_lps(sp, org)), path, compress)
