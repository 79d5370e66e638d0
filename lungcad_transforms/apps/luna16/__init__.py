"""LUNA16: dataset preparation and the FROC / CPM evaluation command."""

from __future__ import annotations

from lungcad_transforms.utils.lazy import lazy_exports

_SUBPACKAGES = ()
_NAMES = {
    "evaluate_files": "lungcad_transforms.apps.luna16.evaluation",
    "add_froc_arguments": "lungcad_transforms.apps.luna16.evaluation",
    "froc_command": "lungcad_transforms.apps.luna16.evaluation",
    "prepare_luna16_dataset": "lungcad_transforms.apps.luna16.prepare",
}
__all__ = sorted(_NAMES)
__getattr__, __dir__ = lazy_exports(__name__, _NAMES, _SUBPACKAGES)
