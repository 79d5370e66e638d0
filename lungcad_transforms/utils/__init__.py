"""Atomic outputs, file locks, checkpoint guards and lazy package exports."""

from __future__ import annotations

from lungcad_transforms.utils.lazy import lazy_exports

_SUBPACKAGES = ()
_NAMES = {
    "atomic_file": "lungcad_transforms.utils.atomic",
    "atomic_dir": "lungcad_transforms.utils.atomic",
    "LARGE_FILES_NAMES": "lungcad_transforms.utils.checkpoint",
    "read_large_files": "lungcad_transforms.utils.checkpoint",
    "expected_hash": "lungcad_transforms.utils.checkpoint",
    "verify_checkpoint": "lungcad_transforms.utils.checkpoint",
    "require_checkpoint": "lungcad_transforms.utils.checkpoint",
    "load_checkpoint": "lungcad_transforms.utils.checkpoint",
    "config_flag": "lungcad_transforms.utils.flags",
    "lazy_exports": "lungcad_transforms.utils.lazy",
    "reexported": "lungcad_transforms.utils.lazy",
    "dataset_lock": "lungcad_transforms.utils.locks",
}
__all__ = sorted(_NAMES)
__getattr__, __dir__ = lazy_exports(__name__, _NAMES, _SUBPACKAGES)
