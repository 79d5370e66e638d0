"""CT-GAN: in-painting generators that inject or remove lung nodules, their training data and the file edits."""

from __future__ import annotations

from lungcad_transforms.utils.lazy import lazy_exports

_SUBPACKAGES = ()
_NAMES = {
    "InpaintingGANStep": "lungcad_transforms.apps.ctgan.adversarial_step",
    "RandInjectNoduled": "lungcad_transforms.apps.ctgan.augmentation",
    "RandInjectNoduleD": "lungcad_transforms.apps.ctgan.augmentation",
    "RandInjectNoduleDict": "lungcad_transforms.apps.ctgan.augmentation",
    "TASKS": "lungcad_transforms.apps.ctgan.cube_dataset",
    "ensure_ctgan_dataset": "lungcad_transforms.apps.ctgan.cube_dataset",
    "ctgan_cube_items": "lungcad_transforms.apps.ctgan.cube_dataset",
    "CUBE_SIZE": "lungcad_transforms.apps.ctgan.cubes",
    "MASK_SIZE": "lungcad_transforms.apps.ctgan.cubes",
    "HU_WINDOW": "lungcad_transforms.apps.ctgan.cubes",
    "normalise_hu": "lungcad_transforms.apps.ctgan.cubes",
    "denormalise_hu": "lungcad_transforms.apps.ctgan.cubes",
    "centre_mask": "lungcad_transforms.apps.ctgan.cubes",
    "nodule_sphere": "lungcad_transforms.apps.ctgan.cubes",
    "generator_input": "lungcad_transforms.apps.ctgan.cubes",
    "cube_points": "lungcad_transforms.apps.ctgan.cubes",
    "cut_cube": "lungcad_transforms.apps.ctgan.cubes",
    "paste_cube": "lungcad_transforms.apps.ctgan.cubes",
    "EDIT_LOG_COLUMNS": "lungcad_transforms.apps.ctgan.edit_files",
    "edit_file": "lungcad_transforms.apps.ctgan.edit_files",
    "edit_scans": "lungcad_transforms.apps.ctgan.edit_files",
    "NoduleEditor": "lungcad_transforms.apps.ctgan.editor",
    "inject": "lungcad_transforms.apps.ctgan.editor",
    "remove": "lungcad_transforms.apps.ctgan.editor",
    "record_generator_settings": "lungcad_transforms.apps.ctgan.editor",
    "GAN_POSITIVES_FILE": "lungcad_transforms.apps.ctgan.fp_positives",
    "ensure_gan_positives": "lungcad_transforms.apps.ctgan.fp_positives",
    "clear_lung_points": "lungcad_transforms.apps.ctgan.real_lung_cubes",
    "ensure_real_lung_cubes": "lungcad_transforms.apps.ctgan.real_lung_cubes",
    "ensure_hybrid_nodule_cubes": "lungcad_transforms.apps.ctgan.real_lung_cubes",
}
__all__ = sorted(_NAMES)
__getattr__, __dir__ = lazy_exports(__name__, _NAMES, _SUBPACKAGES)
