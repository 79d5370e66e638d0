"""DICOM SR TID 1500 measurement report (highdicom) of segmented nodules, and its read-back check."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from lungcad_transforms.data.dicom_seg import derived_series_identity
from lungcad_transforms.errors import InputError
from lungcad_transforms.utils.atomic import atomic_file

__all__ = ["write_measurement_report", "check_measurement_report"]

# (row key, SNOMED / DICOM concept name, UCUM unit) of the numeric measurements of each nodule
_MEASUREMENTS = (
    ("long_axis_mm", "LongAxis", "Millimeter"),
    ("short_axis_mm", "ShortAxis", "Millimeter"),
    ("mean_diameter_mm", "Diameter", "Millimeter"),
    ("volume_mm3", "Volume", "CubicMillimeter"),
    ("probability", "Probability", "NoUnits"),
)


def _concept(name: str) -> Any:
    from pydicom.sr.codedict import codes

    return codes.DCM.Probability if name == "Probability" else getattr(codes.SCT, name)


def _unit(name: str) -> Any:
    import highdicom as hd
    from pydicom.sr.codedict import codes

    if name == "NoUnits":  # UCUM's "1": a dimensionless ratio
        return hd.sr.CodedConcept(value="1", scheme_designator="UCUM", meaning="no units")
    return getattr(codes.UCUM, name)


def write_measurement_report(
    path: str | os.PathLike,
    segmentation: Any,
    nodules: Sequence[Mapping[str, Any]],
    source_images: Sequence[Any],
    algorithm_name: str,
    algorithm_version: str,
) -> Any:
    """Write a Comprehensive 3D SR holding a TID 1500 report: one volumetric group per segmented nodule.

    Args:
        path: the ``.dcm`` file to write (atomically).
        segmentation: the highdicom ``Segmentation`` the nodules' segments are in.
        nodules: rows with ``label`` (their segment number, > 0), the measurements of ``_MEASUREMENTS``
            and ``side`` (``"left"`` / ``"right"``).
        source_images: the CT series' datasets (evidence of the report).
        algorithm_name, algorithm_version: recorded as the observing device and the groups' algorithm.

    Returns:
        the highdicom ``Comprehensive3DSR`` written.
    """
    import highdicom as hd
    from pydicom.sr.codedict import codes

    device = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=hd.UID(), name=algorithm_name, model_name=algorithm_version
        ),
    )
    context = hd.sr.ObservationContext(observer_device_context=device)
    algorithm = hd.sr.AlgorithmIdentification(name=algorithm_name, version=algorithm_version)
    groups = []
    for row in nodules:
        number = int(row["label"])
        # the segment and the CT series it was derived from (TID 1411 "source series")
        segment = hd.sr.ReferencedSegment(
            sop_class_uid=str(segmentation.SOPClassUID),
            sop_instance_uid=str(segmentation.SOPInstanceUID),
            segment_number=number,
            source_series=hd.sr.SourceSeriesForSegmentation(str(source_images[0].SeriesInstanceUID)),
        )
        measurements = [
            hd.sr.Measurement(
                name=_concept(concept), value=float(row[key]), unit=_unit(unit), algorithm_id=algorithm
            )
            for key, concept, unit in _MEASUREMENTS
        ]
        site = hd.sr.FindingSite(
            anatomic_location=codes.SCT.Lung,
            laterality=codes.SCT.Right if row.get("side") == "right" else codes.SCT.Left,
        )
        groups.append(
            hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
                tracking_identifier=hd.sr.TrackingIdentifier(uid=hd.UID(), identifier=f"nodule {number}"),
                referenced_segment=segment,
                finding_type=codes.SCT.Nodule,
                algorithm_id=algorithm,
                finding_sites=[site],
                measurements=measurements,
            )
        )
    report = hd.sr.MeasurementReport(
        observation_context=context,
        procedure_reported=codes.SCT.ComputedTomography,
        imaging_measurements=groups,
        title=codes.cid7021.ImagingMeasurementReport,
    )
    sr = hd.sr.Comprehensive3DSR(
        evidence=[*source_images, segmentation],
        content=report,
        **derived_series_identity(source_images, 901),
        series_description="lungcad nodule measurements",
    )
    with atomic_file(path) as tmp:
        sr.save_as(tmp)
    return sr


def check_measurement_report(
    path: str | os.PathLike, segmentation: Any, nodules: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """Re-read a written report with pydicom and highdicom and cross-check it with the SEG and the nodules.

    Checks: it parses as a TID 1500 report; there is one volumetric group per nodule, each referencing
    the SEG's SOP Instance UID and the nodule's segment number; each measurement equals the nodule's value.

    Raises:
        InputError: naming the file and the first check that failed.
    """
    import highdicom as hd
    import pydicom

    ds = pydicom.dcmread(path)
    sr = hd.sr.srread(path)
    if str(ds.StudyInstanceUID) != str(segmentation.StudyInstanceUID):
        raise InputError(path, "study differs from the SEG's")
    groups = sr.content.get_volumetric_roi_measurement_groups()
    if len(groups) != len(nodules):
        raise InputError(path, f"holds {len(groups)} measurement groups, {len(nodules)} expected")
    by_segment = sorted(groups, key=lambda g: list(g.referenced_segment.referenced_segment_numbers))
    for group, row in zip(by_segment, sorted(nodules, key=lambda r: int(r["label"])), strict=True):
        ref = group.referenced_segment
        if ref.referenced_sop_instance_uid != str(segmentation.SOPInstanceUID):
            raise InputError(path, "a measurement group references another SEG")
        numbers = list(ref.referenced_segment_numbers)
        if numbers != [int(row["label"])]:
            raise InputError(path, f"group of nodule {row['label']} references segment(s) {numbers}")
        for key, concept, _ in _MEASUREMENTS:
            found = group.get_measurements(name=_concept(concept))
            if len(found) != 1 or abs(float(found[0].value) - float(row[key])) > 1e-6 * max(
                1.0, abs(float(row[key]))
            ):
                raise InputError(path, f"nodule {row['label']}: {key} differs from the report's value")
    return {"groups": len(groups), "seg_sop_instance_uid": str(segmentation.SOPInstanceUID)}
