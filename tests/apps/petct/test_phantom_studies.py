"""The embedded PET/CT studies: paired DICOM series with SUV tags, a tumour mask, split by patient."""

from __future__ import annotations

import json

import numpy as np

from lungcad_transforms.apps.petct.phantom_studies import ensure_petct_dataset, make_petct_study

SMALL = dict(ct_shape=(64, 64, 24), ct_spacing=(5.0, 5.0, 6.0), pet_shape=(32, 32, 12))


def test_kinds_have_tumours_hot_spots_or_nothing():
    cancer = make_petct_study(1, "cancer", **SMALL)
    benign = make_petct_study(2, "benign", **SMALL)
    normal = make_petct_study(3, "normal", **SMALL)
    assert cancer["mask"].any() and cancer["ct"].nodules and cancer["pet"].lesions
    assert not benign["mask"].any() and any(h["kind"] == "inflammation" for h in benign["hot_spots"])
    assert not normal["mask"].any() and not any(h["kind"] == "inflammation" for h in normal["hot_spots"])
    # the benign hot spot is FDG-avid without any CT lesion
    assert benign["pet_suv"].max() > 3.0 and not benign["ct"].nodules


def test_dataset_is_dicom_pet_ct_in_one_study_and_frame_split_by_patient(tmp_path):
    from lungcad_transforms.transforms.petct.array import LoadPETCT

    root = tmp_path / "petct"
    assert ensure_petct_dataset(root, n_train=3, n_val=1, n_test=1, **SMALL) == str(root)
    datalist = json.loads((root / "datalist.json").read_text())
    patients = [[e["patient"] for e in datalist[s]] for s in ("training", "validation", "test")]
    assert [len(p) for p in patients] == [3, 1, 1]
    assert len({p for split in patients for p in split}) == 5  # no patient in two splits
    assert [e["kind"] for e in datalist["training"]] == ["cancer", "benign", "normal"]
    entry = datalist["training"][0]
    ct, pet = LoadPETCT()(root / entry["ct"], root / entry["pet"])
    assert ct.meta["frame_of_reference_uid"] == pet.meta["frame_of_reference_uid"]
    assert ct.meta["study_instance_uid"] == pet.meta["study_instance_uid"]
    assert ct.shape == pet.shape == (1, 64, 64, 24)
    # SUV back from the DICOM tags: the tumour is hot, the lung background cold
    from lungcad_transforms.data.image_reader import load_image

    mask = load_image(root / entry["label"])
    assert mask.shape == ct.shape and float(mask.max()) == 1.0
    inside = pet[mask > 0]
    assert float(inside.max()) > 2.5 and float(np.median(pet[ct < -700].numpy())) < 1.0
    # asked again: found, not rebuilt
    before = (root / "datalist.json").stat().st_mtime_ns
    ensure_petct_dataset(root, n_train=3, n_val=1, n_test=1, **SMALL)
    assert (root / "datalist.json").stat().st_mtime_ns == before
