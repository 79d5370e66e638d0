"""NIfTI and MetaImage writers for volumes on a known world geometry."""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lungcad_transforms.data.coords import affine_lps
from lungcad_transforms.errors import InputError
from lungcad_transforms.utils.atomic import atomic_file

__all__ = ["write_nifti", "write_metaimage", "save_nifti"]


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


def write_nifti(
    volume: Any, spacing: Sequence[float], origin_lps: Sequence[float], path: str | os.PathLike
) -> Path:
    """Write a volume as NIfTI-1 (``.nii`` or ``.nii.gz``), atomically.

    NIfTI stores RAS world coordinates, so the affine written is ``diag(-1, -1, 1) @ affine_lps``; the
    array keeps its LPS index order. Both qform and sform are set (code 1, scanner), units mm. Booleans
    are written as uint8, 64-bit integers as 32-bit when they fit; other dtypes are kept.

    Examples:
        >>> from lungcad_transforms.phantoms import make_ct_phantom
        >>> ct = make_ct_phantom((64, 64, 32), seed=0)
        >>> write_nifti(ct.hu, ct.spacing, ct.origin_lps, "/tmp/lungcad_example_ct.nii.gz").name
        'lungcad_example_ct.nii.gz'
    """
    import nibabel as nib

    arr, sp, org = _checked_volume(volume, spacing, origin_lps, path)
    if arr.dtype in (np.int64, np.uint64):
        # nibabel refuses 64-bit integers by default (few tools read them): use 32 bits when they fit
        info = np.iinfo(np.int32)
        arr = (
            arr.astype(np.int32)
            if info.min <= arr.min() and arr.max() <= info.max
            else arr.astype(np.float64)
        )
    affine_ras = np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine_lps(sp, org)
    image = nib.Nifti1Image(arr, affine_ras)
    image.header.set_xyzt_units("mm")
    image.set_qform(affine_ras, code=1)
    image.set_sform(affine_ras, code=1)
    with atomic_file(path) as tmp:
        nib.save(image, tmp)
    return Path(path)


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
        >>> from lungcad_transforms.phantoms import make_ct_phantom
        >>> ct = make_ct_phantom((64, 64, 32), seed=0)
        >>> write_metaimage(ct.hu, ct.spacing, ct.origin_lps, f"/tmp/lungcad_example_{ct.seriesuid}.mhd").suffix
        '.mhd'
    """
    import itk

    path = Path(path)
    if path.suffix.lower() not in (".mha", ".mhd"):
        raise ValueError(f"a MetaImage path ends in .mha or .mhd, got {path.name}")
    arr, sp, org = _checked_volume(volume, spacing, origin_lps, path)
    image = itk.image_from_array(
        np.ascontiguousarray(_itk_ready(arr).transpose(2, 1, 0))
    )  # ITK arrays are (z, y, x)
    image.SetSpacing(sp)
    image.SetOrigin(org)
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


def save_nifti(data: np.ndarray, affine_ras: np.ndarray, path: str | os.PathLike, dtype=np.uint8) -> Path:
    """Write a (X, Y, Z) or (1, X, Y, Z) array with its RAS affine as NIfTI, atomically.

    The affine is the MetaTensor's (voxel -> RAS mm), which is what NIfTI stores, so the file lines
    up in world space with the scan it was computed from.
    """
    import nibabel as nib

    path = Path(path)
    if not path.name.endswith((".nii", ".nii.gz")):
        raise InputError(path, "output must be a NIfTI file ending in .nii or .nii.gz")
    arr = np.asarray(data)
    arr = arr[0] if arr.ndim == 4 else arr
    img = nib.Nifti1Image(arr.astype(dtype), np.asarray(affine_ras, dtype=np.float64))
    img.set_qform(img.affine, code=1)
    img.set_sform(img.affine, code=1)
    with atomic_file(path) as tmp:
        nib.save(img, tmp)
    return path


def _to_numpy(x) -> np.ndarray:
    return x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)
