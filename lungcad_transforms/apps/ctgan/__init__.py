"""CT-GAN: in-painting generators that inject or remove lung nodules, their training data and the file edits."""

from __future__ import annotations

import importlib

_NAMES = {
    "InpaintingGANStep": "lungcad_transforms.apps.ctgan.adversarial_step",
    "TASKS": "lungcad_transforms.apps.ctgan.cube_dataset",
    "ensure_ctgan_dataset": "lungcad_transforms.apps.ctgan.cube_dataset",
    "ctgan_cube_items": "lungcad_transforms.apps.ctgan.cube_dataset",
    "NoduleEditor": "lungcad_transforms.apps.ctgan.editor",
    "inject": "lungcad_transforms.apps.ctgan.editor",
    "remove": "lungcad_transforms.apps.ctgan.editor",
    "record_generator_settings": "lungcad_transforms.apps.ctgan.editor",
    "EDIT_LOG_COLUMNS": "lungcad_transforms.apps.ctgan.edit_files",
    "edit_file": "lungcad_transforms.apps.ctgan.edit_files",
    "edit_scans": "lungcad_transforms.apps.ctgan.edit_files",
    "RandInjectNoduled": "lungcad_transforms.apps.ctgan.augmentation",
    "RandInjectNoduleD": "lungcad_transforms.apps.ctgan.augmentation",
    "RandInjectNoduleDict": "lungcad_transforms.apps.ctgan.augmentation",
}
_SUBPACKAGES = ()
__all__ = sorted(_NAMES)


def __getattr__(name: str):
    # names load on first use: importing the package pulls in nothing heavy (itk, monai)
    if name in _NAMES:
        return getattr(importlib.import_module(_NAMES[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_NAMES))
