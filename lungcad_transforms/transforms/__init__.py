"""lungcad transforms, MONAI style: an array transform in ``<area>/array.py``, its dictionary twin and
aliases in ``<area>/dictionary.py``, pure functions in ``<area>/functional.py``."""

from __future__ import annotations

from lungcad_transforms.utils.lazy import lazy_exports, reexported

_SUBPACKAGES = (
    "intensity",
    "io",
    "lung",
    "petct",
    "post",
    "registration",
    "spatial",
)
_NAMES = reexported(__name__, _SUBPACKAGES)
__all__ = sorted(_NAMES)
__getattr__, __dir__ = lazy_exports(__name__, _NAMES, _SUBPACKAGES)
