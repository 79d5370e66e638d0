"""LIDC-IDRI: reader XML, consensus masks and dataset preparation."""

from __future__ import annotations

import importlib

_NAMES = {
    "group_marks": "lungcad_transforms.apps.lidc.consensus",
    "LidcNodule": "lungcad_transforms.apps.lidc.consensus",
    "LidcConsensus": "lungcad_transforms.apps.lidc.consensus",
    "lidc_consensus": "lungcad_transforms.apps.lidc.consensus",
    "SliceGeometry": "lungcad_transforms.apps.lidc.geometry",
    "read_slice_geometry": "lungcad_transforms.apps.lidc.geometry",
    "sphere_mask": "lungcad_transforms.apps.lidc.prepare",
    "prepare_lidc_dataset": "lungcad_transforms.apps.lidc.prepare",
    "CHARACTERISTICS": "lungcad_transforms.apps.lidc.xml",
    "LidcContour": "lungcad_transforms.apps.lidc.xml",
    "LidcMark": "lungcad_transforms.apps.lidc.xml",
    "LidcRead": "lungcad_transforms.apps.lidc.xml",
    "read_lidc_xml": "lungcad_transforms.apps.lidc.xml",
    "find_lidc_xml": "lungcad_transforms.apps.lidc.xml",
}
_SUBPACKAGES = ()
__all__ = sorted(_NAMES)


def __getattr__(name: str):
    # names and subpackages load on first use: importing a package pulls in nothing heavy (itk, monai)
    if name in _NAMES:
        return getattr(importlib.import_module(_NAMES[name]), name)
    if name in _SUBPACKAGES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_NAMES) | set(_SUBPACKAGES))
