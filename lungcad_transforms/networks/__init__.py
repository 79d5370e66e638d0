"""Networks of the lungcad bundles; the classes live in ``networks.nets``, as in MONAI."""

from __future__ import annotations

from lungcad_transforms.utils.lazy import lazy_exports, reexported

_SUBPACKAGES = ("nets",)
_NAMES = reexported(__name__, _SUBPACKAGES)
__all__ = sorted(_NAMES)
__getattr__, __dir__ = lazy_exports(__name__, _NAMES, _SUBPACKAGES)
