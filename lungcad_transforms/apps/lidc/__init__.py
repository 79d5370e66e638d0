"""LIDC-IDRI: reader XML, consensus masks and dataset preparation."""

from __future__ import annotations

from lungcad_transforms.apps.lidc.consensus import LidcConsensus, LidcNodule, group_marks, lidc_consensus
from lungcad_transforms.apps.lidc.geometry import SliceGeometry, read_slice_geometry
from lungcad_transforms.apps.lidc.prepare import prepare_lidc_dataset, sphere_mask
from lungcad_transforms.apps.lidc.xml import (
    CHARACTERISTICS,
    LidcContour,
    LidcMark,
    LidcRead,
    find_lidc_xml,
    read_lidc_xml,
)
