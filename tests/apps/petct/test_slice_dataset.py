"""Axial PET/CT slices: labels from the lesion mask, one grid for every study, split by patient."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from lungcad_transforms.apps.petct.phantom_studies import ensure_petct_dataset
from lungcad_transforms.apps.petct.slice_dataset import (
    PETCTSliceDataset,
    read_petct_datalist,
    split_by_patient,
)
from lungcad_transforms.apps.petct.study_pairing import pair_petct_studies
from lungcad_transforms.errors import InputError

SMALL = dict(ct_shape=(48, 48, 16), ct_spacing=(7.0, 7.0, 7.5), pet_shape=(24, 24, 8))
GRID = dict(pixdim=(7.0, 7.0), spatial_size=(48, 48))


@pytest.fixture(scope="module")
def dataset_root(tmp_path_factory) -> Path:
    return Path(ensure_petct_dataset(tmp_path_factory.mktemp("petct") / "d", 3, 0, 0, **SMALL))


def test_slice_labels_follow_the_lesion_mask(dataset_root):
    from lungcad_transforms.data.image_reader import load_image

    ds = PETCTSliceDataset(dataset_root / "datalist.json", split="training", min_lesion_pixels=1, **GRID)
    assert len(ds) == 3 * 16 and len(ds.studies) == 3
    item = ds[0]
    assert item["image"].shape == (3, 48, 48) and item["image"].dtype == torch.float32
    assert 0.0 <= float(item["image"].min()) and float(item["image"].max()) <= 1.0
    entries = read_petct_datalist(dataset_root / "datalist.json", "training")
    for s, entry in enumerate(entries):
        mask = load_image(entry["label"])[0].numpy()
        expected = (mask.sum(axis=(0, 1)) >= 1).astype(int)
        got = [r["label"] for r in ds.records if r["study_index"] == s]
        assert got == expected.tolist(), entry["kind"]
        if entry["kind"] != "cancer":
            assert not any(got)  # benign hot spots are hot in PET but not cancer
    assert ds.labels().sum() > 0
    weights = ds.sample_weights().numpy()
    labels = ds.labels()
    assert weights[labels == 1].sum() == pytest.approx(weights[labels == 0].sum())
    # two channels without the fused one
    assert PETCTSliceDataset(entries[:1], channels="ct_pet", **GRID)[0]["image"].shape[0] == 2


def test_split_by_patient_never_shares_a_patient():
    entries = [{"ct": f"c{i}", "pet": f"p{i}", "patient": f"P{i // 3}"} for i in range(30)]  # 3 studies each
    parts = split_by_patient(entries, (0.6, 0.2, 0.2), seed=1)
    patients = [{e["patient"] for e in part} for part in parts]
    assert sum(len(p) for p in patients) == 10 and [len(p) for p in patients] == [6, 2, 2]
    assert not (patients[0] & patients[1] or patients[0] & patients[2] or patients[1] & patients[2])
    assert sum(len(part) for part in parts) == 30


def test_bad_inputs_name_the_file(dataset_root, tmp_path):
    with pytest.raises(InputError, match="datalist not found"):
        PETCTSliceDataset(tmp_path / "none.json")
    (tmp_path / "bad.json").write_text(json.dumps({"training": [{"ct": "x"}]}))
    with pytest.raises(InputError, match="needs 'ct' and 'pet'"):
        PETCTSliceDataset(tmp_path / "bad.json", split="training")
    entry = read_petct_datalist(dataset_root / "datalist.json", "training")[0]
    other = read_petct_datalist(dataset_root / "datalist.json", "training")[1]
    with pytest.raises(InputError, match="Frame of Reference"):
        PETCTSliceDataset([{**entry, "pet": other["pet"]}], **GRID)
    # inference mode: the bad study is reported and skipped, the good one kept
    ds = PETCTSliceDataset([{**entry, "pet": other["pet"], "patient": "mixed"}, other], skip_bad=True, **GRID)
    assert [s["patient"] for s in ds.studies] == [other["patient"]]
    assert ds.skipped[0][0] == "mixed" and "Frame of Reference" in ds.skipped[0][1]
    with pytest.raises(InputError, match="no PET/CT study"):
        PETCTSliceDataset([{**entry, "pet": other["pet"]}], skip_bad=True, **GRID)


def test_real_nsclc_slab_slices_are_suv_on_the_ct_grid(real_data):
    slab = real_data / "pet" / "nsclc_radiogenomics_R01-005_petct_slab"
    if not slab.is_dir():
        pytest.skip("NSCLC-Radiogenomics PET/CT slab missing from the real test data")
    ds = PETCTSliceDataset(pair_petct_studies(slab), skip_bad=True, pixdim=(3.6, 3.6), spatial_size=(96, 96))
    assert len(ds) == 10 and ds.skipped == [] and set(ds.labels().tolist()) == {-1}
    geometry = ds.studies[0]["geometry"]
    assert geometry["ct_shape"] == (512, 512, 10) and geometry["suv_factor"] > 0
    # the slice grid keeps the CT's own slices (4.25 mm) at 3.6 mm in-plane pixels
    assert np.allclose(
        np.abs(np.diag(geometry["slice_affine"]))[:3], [3.6, 3.6, abs(geometry["ct_affine"][2, 2])]
    )
    image = torch.stack([ds.slice_image(i) for i in range(len(ds))])
    ct, pet = image[:, 0], image[:, 1]
    body = ct > 0.5  # soft tissue in the lung window
    # thighs: body on CT, the PET in SUV shows tissue uptake (SUV ~0.3-3 -> 0.03-0.3 of suv_max 10) in the body
    assert 0.1 < float(body.float().mean()) < 0.6
    assert 0.02 < float(pet[body].mean()) < 0.3 and float(pet[~body].mean()) < float(pet[body].mean()) / 3
