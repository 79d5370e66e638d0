"""DICOM SEG (highdicom, BINARY) of labelled findings on a DICOM series' own grid, and its read-back check."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lungcad_transforms.errors import InputError
from lungcad_transforms.utils.atomic import atomic_file

__all__ = ["read_source_series", "derived_series_identity", "write_segmentation", "check_segmentation"]


def read_source_series(files: Sequence[str | os.PathLike], sop_instance_uids: Sequence[str]) -> list[Any]:
    """The headers (no pixel data) of a series' files, in the order of ``sop_instance_uids``.

    Raises:
        InputError: a SOP Instance UID of the loaded volume is not among the files.
    """
    import pydicom

    by_uid = {}
    for path in files:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        by_uid[str(ds.SOPInstanceUID)] = ds
    missing = [uid for uid in sop_instance_uids if uid not in by_uid]
    if missing:
        raise InputError(
            Path(files[0]).parent,
            f"{len(missing)} slice(s) of the loaded series not found, e.g. {missing[0]}",
        )
    return [by_uid[uid] for uid in sop_instance_uids]


def derived_series_identity(source_images: Sequence[Any], series_number_offset: int) -> dict[str, Any]:
    """The identity of a new one-instance series derived from ``source_images`` (highdicom keyword arguments).

    Fresh series and instance UIDs, lungcad as the manufacturer, and a series number
    ``series_number_offset`` above the source's (the SEG takes 900, the SR 901, so the two never share one).
    """
    import highdicom as hd

    return {
        "series_instance_uid": hd.UID(),
        "series_number": int(getattr(source_images[0], "SeriesNumber", 0) or 0) + series_number_offset,
        "sop_instance_uid": hd.UID(),
        "instance_number": 1,
        "manufacturer": "lungcad",
    }


def write_segmentation(
    path: str | os.PathLike,
    labels: np.ndarray,
    source_images: Sequence[Any],
    segment_labels: Sequence[str],
    algorithm_name: str,
    algorithm_version: str,
    series_description: str = "lungcad nodule segmentation",
) -> Any:
    """Write a BINARY DICOM SEG with one segment per label (1..N) of ``labels``.

    Args:
        path: the ``.dcm`` file to write (atomically).
        labels: label map on the series' own grid, ``(columns, rows, slices)`` as ITK reads a series
            (slice ``k`` is ``source_images[k]``); label ``n`` is segment ``n``.
        source_images: the series' datasets (headers suffice), in slice order.
        segment_labels: a label per segment (``"nodule 1"``, ...); their number is the number of segments.
        algorithm_name, algorithm_version: the algorithm identification of every segment.
        series_description: the SEG series' description.

    Returns:
        the highdicom ``Segmentation`` written.
    """
    import highdicom as hd
    from pydicom.sr.codedict import codes

    n = len(segment_labels)
    if n == 0:
        raise ValueError("a DICOM SEG needs at least one segment")
    if labels.shape[2] != len(source_images):
        raise ValueError(f"labels have {labels.shape[2]} slices, the series {len(source_images)}")
    # ITK (column, row, slice) -> DICOM frames (slice, row, column), one channel per segment
    frames = np.ascontiguousarray(np.transpose(labels, (2, 1, 0)))
    pixel_array = np.stack([frames == k for k in range(1, n + 1)], axis=-1)
    algorithm = hd.AlgorithmIdentificationSequence(
        name=algorithm_name, version=algorithm_version, family=codes.cid7162.ArtificialIntelligence
    )
    descriptions = [
        hd.seg.SegmentDescription(
            segment_number=k,
            segment_label=label,
            segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
            segmented_property_type=codes.SCT.Nodule,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=algorithm,
            tracking_uid=hd.UID(),
            tracking_id=label,
        )
        for k, label in enumerate(segment_labels, start=1)
    ]
    seg = hd.seg.Segmentation(
        source_images=list(source_images),
        pixel_array=pixel_array,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        **derived_series_identity(source_images, 900),
        manufacturer_model_name=algorithm_name,
        software_versions=algorithm_version,
        device_serial_number="none",
        series_description=series_description,
    )
    with atomic_file(path) as tmp:
        seg.save_as(tmp)
    return seg


def check_segmentation(
    path: str | os.PathLike, labels: np.ndarray, source_images: Sequence[Any]
) -> dict[str, Any]:
    """Re-read a written SEG with pydicom and highdicom and compare it with what it should hold.

    Checks: it parses; the study, frame of reference and every referenced SOP instance belong to the
    source series; segment ``n`` rebuilt on the source grid equals ``labels == n`` voxel for voxel.

    Returns:
        a summary (``segments``, ``frames``, ``referenced_instances``) when every check passes.

    Raises:
        InputError: naming the file and the first check that failed.
    """
    import highdicom as hd
    import pydicom

    ds = pydicom.dcmread(path)
    seg = hd.seg.segread(path)
    study = str(source_images[0].StudyInstanceUID)
    if str(ds.StudyInstanceUID) != study or str(ds.FrameOfReferenceUID) != str(
        source_images[0].FrameOfReferenceUID
    ):
        raise InputError(path, "study or frame of reference differs from the source series")
    source_uids = [str(s.SOPInstanceUID) for s in source_images]
    referenced = {
        str(item.ReferencedSOPInstanceUID)
        for series in ds.ReferencedSeriesSequence
        for item in series.ReferencedInstanceSequence
    }
    if not referenced or not referenced <= set(source_uids):
        raise InputError(path, "references SOP instances outside the source series")
    n = int(labels.max())
    if len(seg.SegmentSequence) != n:
        raise InputError(path, f"holds {len(seg.SegmentSequence)} segments, {n} expected")
    # the segments back on the source grid, slice by slice in the source order
    stack = seg.get_pixels_by_source_instance(
        source_sop_instance_uids=source_uids,
        segment_numbers=list(range(1, n + 1)),
        assert_missing_frames_are_empty=True,
    )  # (slices, rows, columns, segments)
    for k in range(1, n + 1):
        if not np.array_equal(np.transpose(stack[..., k - 1] > 0, (2, 1, 0)), labels == k):
            raise InputError(path, f"segment {k} differs from the nodule's label on the source grid")
    return {"segments": n, "frames": int(ds.NumberOfFrames), "referenced_instances": len(referenced)}
