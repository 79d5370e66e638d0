"""Jobs that compose the layers below them, one folder each."""

from __future__ import annotations

from lungcad_transforms.utils.lazy import lazy_exports

_SUBPACKAGES = (
    "cad",
    "ctgan",
    "detection",
    "hybrid",
    "lidc",
    "luna16",
    "mrpet",
    "petct",
    "phantoms",
    "prepared",
    "zoo",
)
_NAMES = {}
__all__ = sorted(_NAMES)
__getattr__, __dir__ = lazy_exports(__name__, _NAMES, _SUBPACKAGES)
