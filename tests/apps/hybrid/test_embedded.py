"""The CT bundles' embedded default: phantoms plus real chest CT with synthetic nodules, in one folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lungcad_transforms.apps.hybrid.embedded import ensure_embedded_ct_dataset
from lungcad_transforms.data.tables import read_annotations, read_candidates, read_seriesuids
from lungcad_transforms.errors import InputError

HYBRID = {
    "cases_per_background": 1,
    "window_mm": [96.0, 96.0, 48.0],
    "test_backgrounds": ["LIDC-IDRI"],
    "seed": 0,
}


@pytest.fixture(scope="module")
def embedded_fp(real_data: Path, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("embedded") / "fp"
    phantoms = {
        "n_train": 1,
        "n_val": 1,
        "n_test": 1,
        "shape": [64, 64, 48],
        "spacing": [1.5, 1.5, 2.0],
        "seed": 7,
    }
    return Path(
        ensure_embedded_ct_dataset(root, phantoms=phantoms, hybrid=HYBRID, phantom_kind="fp_reduction")
    )


def test_embedded_default_merges_phantoms_and_hybrid_cases(embedded_fp: Path):
    datalist = json.loads((embedded_fp / "datalist.json").read_text())
    sources = {split: {e["source"] for e in entries} for split, entries in datalist.items()}
    assert sources["training"] == {"phantoms", "hybrid"} and sources["test"] == {"phantoms", "hybrid"}
    for entries in datalist.values():
        for e in entries:
            assert (embedded_fp / e["image"]).is_file()  # paths relative to the merged datalist
    hybrid = json.loads((embedded_fp / "hybrid" / "hybrid_dataset.json").read_text())
    assert hybrid["backgrounds"]["training"] == ["C3N-00247_chest_ct_B70f"]
    # the merged tables are the union of the parts' tables
    n_parts = sum(len(read_annotations(embedded_fp / p / "annotations.csv")) for p in ("phantoms", "hybrid"))
    assert len(read_annotations(embedded_fp / "annotations.csv")) == n_parts
    candidates = read_candidates(embedded_fp / "candidates_training.csv")
    uids = set(read_seriesuids(embedded_fp / "seriesuids_training.csv"))
    assert {c["seriesuid"] for c in candidates} == uids and {c["class"] for c in candidates} == {0, 1}
    # LIDC-0003's LUNA16 nodule lies in its test slab: excluded, not a false positive
    assert read_annotations(embedded_fp / "excluded.csv")


def test_embedded_default_is_written_once(embedded_fp: Path):
    before = (embedded_fp / "datalist.json").stat().st_mtime_ns
    assert ensure_embedded_ct_dataset(embedded_fp, phantoms={}, hybrid=None) == str(embedded_fp)
    assert (embedded_fp / "datalist.json").stat().st_mtime_ns == before  # reused, not rewritten


def test_embedded_default_without_real_scans_is_phantoms_only(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("LUNGCAD_TEST_DATA", str(tmp_path / "nowhere"))
    root = ensure_embedded_ct_dataset(
        tmp_path / "seg",
        phantoms={"n_train": 1, "n_val": 1, "n_test": 0, "shape": [48, 48, 24]},
        hybrid=HYBRID,
    )
    datalist = json.loads((Path(root) / "datalist.json").read_text())
    assert {e["source"] for s in datalist.values() for e in s} == {"phantoms"}
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "scan.nii.gz").write_bytes(b"")
    with pytest.raises(InputError, match="no embedded dataset"):
        ensure_embedded_ct_dataset(tmp_path / "mine", phantoms={}, hybrid=None)
