"""`lungcad lungmask`: mask the lungs of one scan and write the mask."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from monai.data.utils import affine_to_spacing
from monai.utils import convert_to_numpy

from lungcad_transforms.data.image_writer import write_image
from lungcad_transforms.errors import InputError

__all__ = ["LungMaskResult", "mask_lungs_file"]


@dataclass
class LungMaskResult:
    path: Path
    volume_ml: float
    n_components: int


def mask_lungs_file(
    input_path: str | os.PathLike,
    output_path: str | os.PathLike,
    dilation_mm: float = 10.0,
    threshold_hu: float = -350.0,
) -> LungMaskResult:
    """Mask the lungs of one CT scan (DICOM series folder or image file) and write the mask as NIfTI.

    The mask is written on the input's own voxel grid (shape, affine and axis order of the file given,
    or for DICOM of the series as ITK orders it), so it overlays the scan voxel by voxel.

    Examples:
        >>> mask_lungs_file("LIDC-IDRI-0003/series", "/tmp/lungs.nii.gz").volume_ml  # doctest: +SKIP
        412.7
    """
    import cc3d

    from lungcad_transforms.data.image_reader import load_image
    from lungcad_transforms.transforms.lung.array import LungMask

    output_path = Path(output_path)
    if not output_path.name.endswith((".nii", ".nii.gz")):
        raise InputError(output_path, "output must be a NIfTI file ending in .nii or .nii.gz")
    image = load_image(os.fspath(input_path))
    mask = LungMask(threshold=threshold_hu, dilation_mm=dilation_mm)(image)
    mask_np = convert_to_numpy(mask)[0] > 0
    write_image(mask_np, output_path, like=image, dtype=np.uint8)
    voxel_ml = float(np.prod(affine_to_spacing(convert_to_numpy(image.affine), r=3))) / 1000.0
    n_components = int(cc3d.connected_components(mask_np, connectivity=26, return_N=True)[1])
    return LungMaskResult(output_path, float(mask_np.sum()) * voxel_ml, n_components)
