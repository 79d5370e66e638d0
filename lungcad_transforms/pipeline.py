"""End-to-end jobs built from the library: masking one scan, and the demo CAD run on a phantom.

The CAD run grows here as the bundles land (segmentation -> candidates -> false-positive reduction);
for now it generates a phantom study as a DICOM series, reads it back through the same I/O path a
user's scans take, and masks the lungs.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lungcad_transforms.errors import InputError
from lungcad_transforms.outputs import atomic_file

__all__ = ["LungMaskResult", "save_nifti", "mask_lungs_file", "run_demo"]

logger = logging.getLogger("lungcad")


@dataclass
class LungMaskResult:
    path: Path
    volume_ml: float
    n_components: int


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


def mask_lungs_file(
    input_path: str | os.PathLike,
    output_path: str | os.PathLike,
    dilation_mm: float = 10.0,
    threshold_hu: float = -350.0,
) -> LungMaskResult:
    """Mask the lungs of one CT scan (DICOM series folder or image file) and write the mask as NIfTI.

    Examples:
        >>> mask_lungs_file("LIDC-IDRI-0003/series", "/tmp/lungs.nii.gz").volume_ml  # doctest: +SKIP
        412.7
    """
    import cc3d

    from lungcad_transforms.io import load_image
    from lungcad_transforms.lungmask import LungMask

    output_path = Path(output_path)
    if not output_path.name.endswith((".nii", ".nii.gz")):
        raise InputError(output_path, "output must be a NIfTI file ending in .nii or .nii.gz")
    image = load_image(os.fspath(input_path))
    mask = LungMask(threshold=threshold_hu, dilation_mm=dilation_mm)(image)
    mask_np = _to_numpy(mask)[0] > 0
    save_nifti(mask_np, _to_numpy(image.affine), output_path)
    voxel_ml = float(np.prod(_to_numpy(image.pixdim)[:3])) / 1000.0
    n_components = int(cc3d.connected_components(mask_np, connectivity=26, return_N=True)[1])
    return LungMaskResult(output_path, float(mask_np.sum()) * voxel_ml, n_components)


def run_demo(out_dir: str | os.PathLike, seed: int = 0) -> dict[str, Path]:
    """The main job on the embedded default: a synthetic CT study, read back as DICOM, lungs masked.

    Writes under ``out_dir``: ``phantom_dicom/`` (the study), ``annotations.csv`` (its nodules in LUNA16
    form), ``lung_mask.nii.gz``, ``lung_mask.png`` (a montage) and ``summary.json``.
    """
    from lungcad_transforms.coords import world_to_voxel
    from lungcad_transforms.io import find_images, load_image
    from lungcad_transforms.lungmask import LungMask
    from lungcad_transforms.phantoms import make_ct_phantom
    from lungcad_transforms.visualize import save_montage
    from lungcad_transforms.writers import write_annotations_csv, write_dicom_series, write_nifti

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    phantom = make_ct_phantom(shape=(192, 192, 128), seed=seed)
    dicom_dir = write_dicom_series(
        phantom.hu,
        phantom.spacing,
        phantom.origin_lps,
        out / "phantom_dicom",
        modality="CT",
        seriesuid=phantom.seriesuid,
    )
    annotations = write_annotations_csv(
        [
            {
                "seriesuid": phantom.seriesuid,
                "coordX": n.center_lps[0],
                "coordY": n.center_lps[1],
                "coordZ": n.center_lps[2],
                "diameter_mm": n.diameter_mm,
            }
            for n in phantom.nodules
        ],
        out / "annotations.csv",
    )
    truth_path = write_nifti(
        phantom.lungs.astype(np.uint8), phantom.spacing, phantom.origin_lps, out / "lungs_ground_truth.nii.gz"
    )

    (entry,) = find_images(dicom_dir)
    image = load_image(entry)
    mask = _to_numpy(LungMask(dilation_mm=0.0)(image))[0] > 0
    truth = _to_numpy(load_image(os.fspath(truth_path)))[0] > 0
    dice = 2.0 * np.count_nonzero(mask & truth) / max(np.count_nonzero(mask) + np.count_nonzero(truth), 1)
    mask_path = save_nifti(mask, _to_numpy(image.affine), out / "lung_mask.nii.gz")
    spacing = tuple(float(s) for s in _to_numpy(image.pixdim)[:3])
    # planes through the first nodule: shows that the mask keeps the nodules inside the lung
    nodule_voxel = np.floor(world_to_voxel([phantom.nodules[0].center_lps], _to_numpy(image.affine))[0] + 0.5)
    png = save_montage(
        out / "lung_mask.png",
        _to_numpy(image)[0],
        mask,
        center=nodule_voxel.astype(int),
        spacing=spacing,
        title=f"phantom {phantom.seriesuid[-12:]}: lung mask (Dice {dice:.3f} vs truth)",
    )
    summary = {
        "seriesuid": phantom.seriesuid,
        "shape": list(phantom.hu.shape),
        "spacing_mm": list(spacing),
        "lung_volume_ml": float(mask.sum() * np.prod(spacing) / 1000.0),
        "lung_dice_vs_ground_truth": round(float(dice), 4),
        "nodules": len(phantom.nodules),
    }
    summary_path = out / "summary.json"
    with atomic_file(summary_path) as tmp:
        tmp.write_text(json.dumps(summary, indent=2))
    logger.info("demo summary: %s", summary)
    return {
        "dicom series": dicom_dir,
        "annotations": annotations,
        "lung mask": mask_path,
        "montage": png,
        "summary": summary_path,
    }
