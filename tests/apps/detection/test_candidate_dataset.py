"""The candidate patch dataset: one read per scan, caching, skipping, labels and weights, extra positives, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from blob_scans import SCALES, write_two_scans
from monai.data import MetaTensor

import lungcad_transforms.data.image_reader as lungcad_io
from lungcad_transforms.apps.detection.candidate_dataset import MultiScalePatchDataset, load_extra_positives
from lungcad_transforms.data.datasets import resolve_scans
from lungcad_transforms.errors import InputError
from lungcad_transforms.transforms.spatial.array import MultiScalePatch
from lungcad_transforms.transforms.spatial.functional import PATCH_KEYS, extract_multiscale_patches


@pytest.fixture()
def two_scans(tmp_path):
    return write_two_scans(tmp_path)


def test_each_scan_is_read_once_and_then_comes_from_the_cache(two_scans, tmp_path, monkeypatch):
    scans, table, _ = two_scans
    reads = []
    real_load = lungcad_io.load_image

    def counting_load(ref):
        reads.append(ref["image"] if isinstance(ref, dict) else ref)
        return real_load(ref)

    monkeypatch.setattr(lungcad_io, "load_image", counting_load)
    cache = tmp_path / "cache"
    first = MultiScalePatchDataset(scans, table, SCALES, (16, 16, 16), cache_dir=cache)
    assert len(first) == 5
    assert sorted(reads) == sorted(s["image"] for s in scans)  # 5 candidates, 2 scans, 2 reads
    for _ in range(3):  # epochs read from memory
        [first[i] for i in range(len(first))]
    assert len(reads) == 2
    second = MultiScalePatchDataset(scans, table, SCALES, (16, 16, 16), cache_dir=cache)
    assert len(reads) == 2  # the next run reads no scan
    np.testing.assert_array_equal(first.patches, second.patches)
    assert [r["seriesuid"] for r in first.records] == [r["seriesuid"] for r in second.records]
    # other patch settings make another cache entry instead of reusing a wrong one
    MultiScalePatchDataset(scans, table, SCALES, (12, 12, 12), cache_dir=cache)
    assert len(reads) == 4


def test_dataset_items_labels_and_balanced_weights(two_scans):
    scans, table, _ = two_scans
    ds = MultiScalePatchDataset(scans, table, SCALES, (16, 16, 16))
    item = ds[0]
    assert set(item) == {*PATCH_KEYS, "label", "index"}
    assert isinstance(item["patch_s1"], MetaTensor) and item["patch_s1"].shape == (1, 16, 16, 16)
    assert ds.class_counts() == {0: 2, 1: 3}
    weights = ds.sample_weights().numpy()
    # each class carries half the probability mass
    assert weights[ds.labels == 1].sum() == pytest.approx(weights[ds.labels == 0].sum())
    assert ds.seriesuids == ["scan.a", "scan.b"]


def test_outside_candidates_and_unknown_series_are_reported_and_skipped(two_scans, tmp_path, caplog):
    scans, table, _ = two_scans
    extra = table.read_text() + "scan.a,500.0,500.0,500.0,0\nno.such.scan,1.0,2.0,3.0,0\n"
    bad = tmp_path / "bad.csv"
    bad.write_text(extra)
    ds = MultiScalePatchDataset(scans, bad, SCALES, (16, 16, 16))
    assert len(ds) == 5  # the good rows are all still there
    reasons = " ".join(s["reason"] for s in ds.skipped)
    assert "outside scan" in reasons and "no.such.scan has no scan" in reasons
    assert "candidate skipped" in caplog.text
    quiet = MultiScalePatchDataset(scans, bad, SCALES, (16, 16, 16), ignore_unknown_series=True)
    assert len(quiet.skipped) == 1  # only the outside one


def test_training_table_must_be_well_formed(two_scans, tmp_path):
    scans, table, _ = two_scans
    bad = tmp_path / "bad.csv"
    bad.write_text(table.read_text() + "scan.a,abc,2.0,3.0,0\n")
    with pytest.raises(InputError, match="not a number"):
        MultiScalePatchDataset(scans, bad, SCALES, (16, 16, 16))
    unlabelled = tmp_path / "unlabelled.csv"
    unlabelled.write_text("seriesuid,coordX,coordY,coordZ,probability\nscan.a,1.0,2.0,-90.0,0.9\n")
    with pytest.raises(InputError, match="class"):
        MultiScalePatchDataset(scans, unlabelled, SCALES, (16, 16, 16))


def test_extra_positives_hook(tmp_path, two_scans):
    scans, table, centres = two_scans
    arrays = {k: np.full((2, 16, 16, 16), 0.5, np.float32) for k in PATCH_KEYS}
    np.savez(tmp_path / "gan.npz", **arrays)
    datalist = tmp_path / "extra.json"
    uid = "scan.b"
    datalist.write_text(
        json.dumps(
            [
                {"patches": "gan.npz"},
                {"image": scans[1]["image"], "seriesuid": uid, "coordX": centres[uid][0][0],
                 "coordY": centres[uid][0][1], "coordZ": centres[uid][0][2]},
            ]
        )
    )  # fmt: skip
    ds = MultiScalePatchDataset(scans, table, SCALES, (16, 16, 16), extra_positives=str(datalist))
    assert len(ds) == 5 + 3
    assert ds.class_counts() == {0: 2, 1: 6}
    assert sum(r["synthetic"] for r in ds.records) == 3
    assert load_extra_positives(None) == []
    assert len(load_extra_positives(lambda: [arrays])) == 1
    (tmp_path / "wrong.npz").write_bytes(b"")
    np.savez(tmp_path / "wrong.npz", **{k: np.zeros((2, 8, 8, 8)) for k in PATCH_KEYS})
    with pytest.raises(InputError, match="shapes"):
        MultiScalePatchDataset(
            scans, table, SCALES, (16, 16, 16), extra_positives=str(tmp_path / "wrong.npz")
        )


def test_bad_input_is_refused(tmp_path, two_scans):
    scans, table, _ = two_scans
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError):
        resolve_scans(empty)
    with pytest.raises(InputError):
        MultiScalePatchDataset(scans, tmp_path / "missing.csv", SCALES, (16, 16, 16))
    image = lungcad_io.load_image(scans[0])
    with pytest.raises(InputError, match="outside the scan"):
        MultiScalePatch(SCALES, (16, 16, 16))(image, [900.0, 900.0, 900.0])
    with pytest.raises(ValueError):
        extract_multiscale_patches(np.zeros((4, 4)), np.eye(4), np.zeros((1, 3)))
    with pytest.raises(ValueError):
        MultiScalePatch(((20.0, 20.0, -1.0),), (16, 16, 16))
    datalist = tmp_path / "datalist.json"
    datalist.write_text(json.dumps({"training": [{"image": "a.nii.gz"}]}))
    with pytest.raises(InputError, match="no 'test' list"):
        resolve_scans(datalist, split="test")
    assert resolve_scans(datalist, split="training")[0]["image"] == str(tmp_path / "a.nii.gz")
