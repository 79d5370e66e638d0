"""DICOM SEG and TID 1500 SR of nodules: written with highdicom, re-read with pydicom and highdicom, cross-checked."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest

from lungcad_transforms.data.dicom_seg import (
    check_segmentation,
    derived_series_identity,
    read_source_series,
    write_segmentation,
)
from lungcad_transforms.data.dicom_sr import check_measurement_report, write_measurement_report
from lungcad_transforms.errors import InputError

pytest.importorskip("highdicom")

SEG_STORAGE = "1.2.840.10008.5.1.4.1.1.66.4"
COMPREHENSIVE_3D_SR = "1.2.840.10008.5.1.4.1.1.88.34"


@pytest.fixture(scope="module")
def series(tmp_path_factory):
    """A phantom CT written as DICOM, loaded back; its nodule labels on the series' own grid."""
    from lungcad_transforms.apps.phantoms.ct import make_ct_phantom
    from lungcad_transforms.data.dicom import dicom_series_files
    from lungcad_transforms.data.dicom_writer import write_dicom_series
    from lungcad_transforms.data.image_reader import load_image

    ct = make_ct_phantom((64, 64, 24), spacing=(1.2, 1.2, 2.0), seed=4, nodule_kinds=("solid", "solid"))
    folder = tmp_path_factory.mktemp("ct")
    written = write_dicom_series(
        ct.hu, ct.spacing, ct.origin_lps, folder, modality="CT", seriesuid=ct.seriesuid
    )
    image = load_image(str(written))
    sources = read_source_series(dicom_series_files(written), image.meta["sop_instance_uids"].split("\\"))
    # the phantom's arrays are in ITK's (column, row, slice) order of the written series: its own grid
    return ct, sources, ct.nodule_labels.astype(np.uint16)


def _nodule_rows(labels: np.ndarray):
    return [
        {"label": n, "long_axis_mm": 8.0 + n, "short_axis_mm": 6.0 + n, "mean_diameter_mm": 7.0 + n,
         "volume_mm3": float((labels == n).sum()) * 2.88, "probability": 0.5 + 0.1 * n, "side": "right" if n == 1 else "left"}
        for n in range(1, int(labels.max()) + 1)
    ]  # fmt: skip


def test_seg_and_sr_round_trip_and_reference_the_source(tmp_path: Path, series):
    ct, sources, labels = series
    assert labels.max() == 2
    seg = write_segmentation(
        tmp_path / "seg.dcm", labels, sources, ["nodule 1", "nodule 2"], "lungcad test", "0.1"
    )
    summary = check_segmentation(tmp_path / "seg.dcm", labels, sources)
    assert summary["segments"] == 2 and summary["referenced_instances"] >= 1
    ds = pydicom.dcmread(tmp_path / "seg.dcm")
    assert ds.SOPClassUID == SEG_STORAGE and ds.SegmentationType == "BINARY" and ds.Modality == "SEG"
    assert ds.StudyInstanceUID == sources[0].StudyInstanceUID
    assert ds.FrameOfReferenceUID == sources[0].FrameOfReferenceUID
    assert ds.SeriesInstanceUID != sources[0].SeriesInstanceUID
    item = ds.SegmentSequence[0]
    assert (
        item.SegmentAlgorithmType == "AUTOMATIC"
        and item.SegmentedPropertyTypeCodeSequence[0].CodeValue == "27925004"
    )
    assert item.SegmentationAlgorithmIdentificationSequence[0].AlgorithmName == "lungcad test"
    # only frames that hold a nodule are stored, each pointing at its source slice
    slices_with_nodules = {k for k in range(labels.shape[2]) if labels[:, :, k].any()}
    referenced = {
        f.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        for f in ds.PerFrameFunctionalGroupsSequence
    }
    assert referenced == {sources[k].SOPInstanceUID for k in slices_with_nodules}

    rows = _nodule_rows(labels)
    write_measurement_report(tmp_path / "sr.dcm", seg, rows, sources, "lungcad test", "0.1")
    assert check_measurement_report(tmp_path / "sr.dcm", seg, rows)["groups"] == 2
    sr = pydicom.dcmread(tmp_path / "sr.dcm")
    assert sr.SOPClassUID == COMPREHENSIVE_3D_SR and sr.StudyInstanceUID == ds.StudyInstanceUID
    evidence = {
        i.ReferencedSOPInstanceUID
        for s in sr.CurrentRequestedProcedureEvidenceSequence
        for r in s.ReferencedSeriesSequence
        for i in r.ReferencedSOPSequence
    }
    assert ds.SOPInstanceUID in evidence and sources[0].SOPInstanceUID in evidence
    assert sr.ContentTemplateSequence[0].TemplateIdentifier == "1500"


def test_derived_series_identity_is_new_and_numbered_above_the_source(series):
    _, sources, _ = series
    seg, sr = derived_series_identity(sources, 900), derived_series_identity(sources, 901)
    assert (
        seg["series_number"] == int(sources[0].SeriesNumber) + 900
        and sr["series_number"] == seg["series_number"] + 1
    )
    uids = {
        seg["series_instance_uid"],
        seg["sop_instance_uid"],
        sr["series_instance_uid"],
        sr["sop_instance_uid"],
    }
    assert len(uids) == 4 and sources[0].SeriesInstanceUID not in uids
    assert seg["instance_number"] == 1 and seg["manufacturer"] == "lungcad"


def test_check_segmentation_catches_a_seg_that_differs(tmp_path: Path, series):
    _, sources, labels = series
    write_segmentation(tmp_path / "seg.dcm", labels, sources, ["nodule 1", "nodule 2"], "lungcad test", "0.1")
    moved = np.roll(labels, 3, axis=0)
    with pytest.raises(InputError, match="segment 1 differs"):
        check_segmentation(tmp_path / "seg.dcm", moved, sources)


def test_check_report_catches_a_changed_value_and_a_missing_group(tmp_path: Path, series):
    _, sources, labels = series
    seg = write_segmentation(
        tmp_path / "seg.dcm", labels, sources, ["nodule 1", "nodule 2"], "lungcad test", "0.1"
    )
    rows = _nodule_rows(labels)
    write_measurement_report(tmp_path / "sr.dcm", seg, rows, sources, "lungcad test", "0.1")
    changed = [dict(rows[0], volume_mm3=rows[0]["volume_mm3"] + 1.0), rows[1]]
    with pytest.raises(InputError, match="volume_mm3 differs"):
        check_measurement_report(tmp_path / "sr.dcm", seg, changed)
    with pytest.raises(InputError, match="2 measurement groups, 1 expected"):
        check_measurement_report(tmp_path / "sr.dcm", seg, rows[:1])


def test_seg_on_a_real_lidc_slab_references_its_sop_instances(
    tmp_path: Path, lidc_0003: Path, luna16_annotations: Path
):
    """A SEG of spheres at LIDC-0003's LUNA16 nodules, on the real series' own grid, re-read and checked."""
    from lungcad_transforms.data.coords import world_to_voxel
    from lungcad_transforms.data.dicom import dicom_series_files
    from lungcad_transforms.data.image_reader import load_image
    from lungcad_transforms.data.image_writer import to_source_grid
    from lungcad_transforms.data.tables import read_annotations

    image = load_image(str(lidc_0003))
    uid = image.meta["series_instance_uid"]
    nodules = [r for r in read_annotations(luna16_annotations) if r["seriesuid"] == uid]
    assert nodules, "LIDC-0003 has LUNA16 nodules"
    affine = np.asarray(image.affine, dtype=np.float64)
    spacing = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
    grid = np.indices(image.shape[1:]).astype(np.float32)
    labels_ras = np.zeros(image.shape[1:], np.uint16)
    for n, row in enumerate(nodules, start=1):
        centre = world_to_voxel([[row["coordX"], row["coordY"], row["coordZ"]]], affine)[0]
        dist = sum(((grid[a] - centre[a]) * spacing[a]) ** 2 for a in range(3))
        labels_ras[(dist <= (row["diameter_mm"] / 2) ** 2) & (labels_ras == 0)] = n
    present = [n for n in range(1, len(nodules) + 1) if (labels_ras == n).any()]
    assert present == list(range(1, len(present) + 1)) and present
    labels, _ = to_source_grid(labels_ras, like=image)
    sources = read_source_series(dicom_series_files(lidc_0003), image.meta["sop_instance_uids"].split("\\"))
    write_segmentation(
        tmp_path / "seg.dcm", labels, sources, [f"nodule {n}" for n in present], "lungcad test", "0.1"
    )
    assert check_segmentation(tmp_path / "seg.dcm", labels, sources)["segments"] == len(present)
    ds = pydicom.dcmread(tmp_path / "seg.dcm")
    assert ds.PatientID == sources[0].PatientID and ds.StudyInstanceUID == sources[0].StudyInstanceUID
