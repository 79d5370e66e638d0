"""Jobs that compose the layers below them, one folder each."""

from __future__ import annotations

import importlib

_SUBPACKAGES = ("cad", "detection", "lidc", "luna16", "phantoms")


def __getattr__(name: str):
    # Subpackages load on first use, so that importing the package pulls in nothing heavy (itk, pydicom).
    if name in _SUBPACKAGES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
