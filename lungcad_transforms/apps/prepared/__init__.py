"""Prepared datasets: sphere labels, the labels/datalist/annotations folder and the preparer command line."""

from __future__ import annotations

from lungcad_transforms.utils.lazy import lazy_exports

_SUBPACKAGES = ()
_NAMES = {
    "sphere_mask": "lungcad_transforms.apps.prepared.dataset",
    "PreparedCase": "lungcad_transforms.apps.prepared.dataset",
    "write_prepared_dataset": "lungcad_transforms.apps.prepared.dataset",
    "add_prepare_arguments": "lungcad_transforms.apps.prepared.dataset",
    "run_prepare": "lungcad_transforms.apps.prepared.dataset",
}
__all__ = sorted(_NAMES)
__getattr__, __dir__ = lazy_exports(__name__, _NAMES, _SUBPACKAGES)
