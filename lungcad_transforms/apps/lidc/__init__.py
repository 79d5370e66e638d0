"""LIDC-IDRI: reader XML, consensus masks and dataset preparation."""

from __future__ import annotations

from lungcad_transforms.utils.lazy import lazy_exports

_SUBPACKAGES = ()
_NAMES = {
    "group_marks": "lungcad_transforms.apps.lidc.consensus",
    "LidcNodule": "lungcad_transforms.apps.lidc.consensus",
    "LidcConsensus": "lungcad_transforms.apps.lidc.consensus",
    "lidc_consensus": "lungcad_transforms.apps.lidc.consensus",
    "SliceGeometry": "lungcad_transforms.apps.lidc.geometry",
    "read_slice_geometry": "lungcad_transforms.apps.lidc.geometry",
    "prepare_lidc_dataset": "lungcad_transforms.apps.lidc.prepare",
    "CHARACTERISTICS": "lungcad_transforms.apps.lidc.xml",
    "LidcContour": "lungcad_transforms.apps.lidc.xml",
    "LidcMark": "lungcad_transforms.apps.lidc.xml",
    "LidcRead": "lungcad_transforms.apps.lidc.xml",
    "read_lidc_xml": "lungcad_transforms.apps.lidc.xml",
    "find_lidc_xml": "lungcad_transforms.apps.lidc.xml",
}
__all__ = sorted(_NAMES)
__getattr__, __dir__ = lazy_exports(__name__, _NAMES, _SUBPACKAGES)
