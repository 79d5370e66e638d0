"""`lungcad demo`: a synthetic study end to end, masked and summarised."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
from monai.data.utils import affine_to_spacing
from monai.utils import convert_to_numpy

from lungcad_transforms.data.image_writer import write_image
from lungcad_transforms.utils.atomic import atomic_file

logger = logging.getLogger(__name__)

__all__ = ["run_demo"]


def run_demo(out_dir: str | os.PathLike, seed: int = 0) -> dict[str, Path]:
    """The main job on the embedded default: a synthetic CT study, read back as DICOM, lungs masked.

    Writes under ``out_dir``: ``phantom_dicom/`` (the study), ``annotations.csv`` (its nodules in LUNA16
    form), ``lung_mask.nii.gz``, ``lung_mask.png`` (a montage) and ``summary.json``.
    """
    from lungcad_transforms.apps.phantoms.ct import make_ct_phantom
    from lungcad_transforms.data.coords import world_to_voxel
    from lungcad_transforms.data.dicom_writer import write_dicom_series
    from lungcad_transforms.data.image_reader import find_images, load_image
    from lungcad_transforms.data.image_writer import write_nifti
    from lungcad_transforms.data.tables import write_annotations_csv
    from lungcad_transforms.transforms.lung.array import LungMask
    from lungcad_transforms.visualize.montage import save_montage

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
    mask = convert_to_numpy(LungMask(dilation_mm=0.0)(image))[0] > 0
    truth = convert_to_numpy(load_image(os.fspath(truth_path)))[0] > 0
    dice = 2.0 * np.count_nonzero(mask & truth) / max(np.count_nonzero(mask) + np.count_nonzero(truth), 1)
    # on the DICOM series' own grid, so the mask overlays the written study voxel by voxel
    mask_path = write_image(mask, out / "lung_mask.nii.gz", like=image, dtype=np.uint8)
    affine = convert_to_numpy(image.affine, dtype=np.float64)
    spacing = tuple(float(s) for s in affine_to_spacing(affine, r=3))
    # planes through the first nodule: shows that the mask keeps the nodules inside the lung
    nodule_voxel = np.floor(world_to_voxel([phantom.nodules[0].center_lps], affine)[0] + 0.5)
    png = save_montage(
        out / "lung_mask.png",
        convert_to_numpy(image)[0],
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
