"""Checks of NIfTI / MetaImage / NRRD headers for what ITK would silently paper over (zero spacing, NaN)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from nibabel.openers import ImageOpener

from lungcad_transforms.errors import InputError

__all__ = ["check_spacing_header", "nifti_non_finite_count"]


def _header_text(path: Path, limit: int = 65536) -> list[str]:
    with open(path, "rb") as handle:
        return handle.read(limit).decode("latin-1").splitlines()


def check_spacing_header(path: Path, suffix: str) -> None:
    """Refuse a volume file whose header has no usable voxel spacing.

    ITK (and nibabel) quietly replace a zero or absent spacing by 1 mm, which would make every size and
    distance downstream wrong, so the raw header is read here before ITK sees the file.

    Args:
        path: the image file (for a ``.mhd`` / ``.nhdr``, its header).
        suffix: its lower-case volume suffix (``".nii.gz"``, ``".mha"``, ...); other suffixes are not checked.

    Raises:
        InputError: the header cannot be read or gives no finite, positive spacing.
    """
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


def nifti_non_finite_count(path: Path) -> int:
    """How many NaN / infinite voxels a floating-point NIfTI holds (0 for integer data).

    ITK's NIfTI reader turns NaN and infinity into 0 without a word, so the check that
    :func:`~lungcad_transforms.data.image_reader.load_image` runs on the loaded array cannot see them: they are counted here with nibabel,
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
