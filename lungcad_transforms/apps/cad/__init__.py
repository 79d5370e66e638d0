"""The CAD jobs run from the command line: lung masking of a scan, the demo."""

from __future__ import annotations

from lungcad_transforms.utils.lazy import lazy_exports

_SUBPACKAGES = ()
_NAMES = {
    "run_demo": "lungcad_transforms.apps.cad.demo",
    "LungMaskResult": "lungcad_transforms.apps.cad.lungmask",
    "mask_lungs_file": "lungcad_transforms.apps.cad.lungmask",
}
__all__ = sorted(_NAMES)
__getattr__, __dir__ = lazy_exports(__name__, _NAMES, _SUBPACKAGES)
