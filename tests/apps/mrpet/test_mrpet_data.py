"""The embedded MR/PET studies, their pairing, loading onto one grid, slice samples and patient scores."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from lungcad_transforms.apps.mrpet.phantom_pairs import PAIR_KINDS, ensure_mrpet_dataset, make_mrpet_pair
from lungcad_transforms.apps.mrpet.slices import MRPETSliceDataset, patient_scores
from lungcad_transforms.apps.mrpet.volumes import MRPETVolumed, mrpet_datalist, pair_dicom_studies
from lungcad_transforms.errors import InputError

pytest.importorskip("itk")
SMALL = dict(mr_shape=(48, 48, 12), mr_spacing=(6.0, 6.0, 8.0), pet_shape=(24, 24, 12))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return ensure_mrpet_dataset(
        tmp_path_factory.mktemp("mrpet") / "d", n_train=4, n_val=0, n_test=0, n_misaligned=1, seed=5, **SMALL
    )


def _lesion_contrast(image, mask):
    from scipy import ndimage

    ring = ndimage.binary_dilation(mask, iterations=3) & ~ndimage.binary_dilation(mask, iterations=1)
    return float(image[mask].mean() - image[ring].mean())


def test_one_modality_fades_the_tumour_the_other_shows():
    both = make_mrpet_pair(3, "both", **SMALL)
    pet_only = make_mrpet_pair(3, "pet_dominant", **SMALL)
    mr_only = make_mrpet_pair(3, "mr_dominant", **SMALL)
    mask, pet_mask = both["mask"] > 0, both["pet_mask"] > 0
    assert mask.any() and np.array_equal(mask, pet_only["mask"] > 0)  # one patient, three visibilities
    mr_c = _lesion_contrast(both["mr_image"], mask)
    assert abs(_lesion_contrast(pet_only["mr_image"], mask)) < 0.3 * abs(mr_c)
    assert _lesion_contrast(pet_only["pet_suv"], pet_mask) > 0.8 * _lesion_contrast(both["pet_suv"], pet_mask)
    assert _lesion_contrast(mr_only["pet_suv"], pet_mask) < 0.3 * _lesion_contrast(both["pet_suv"], pet_mask)
    assert not make_mrpet_pair(3, "normal", **SMALL)["mask"].any()


def test_embedded_dataset_layout_kinds_and_misaligned_frame(dataset):
    datalist = json.loads((Path(dataset) / "datalist.json").read_text())
    assert [e["kind"] for e in datalist["training"]] == list(PAIR_KINDS)
    assert [e["tumour"] for e in datalist["training"]] == [0, 1, 1, 1]
    moved = datalist["misaligned"][0]
    assert np.asarray(moved["misalignment_lps"]).shape == (4, 4)
    import pydicom

    first = {m: pydicom.dcmread(sorted((Path(dataset) / moved[m]).glob("*.dcm"))[0])
             for m in ("mr", "pet")}  # fmt: skip
    assert first["mr"].StudyInstanceUID == first["pet"].StudyInstanceUID
    assert first["mr"].FrameOfReferenceUID != first["pet"].FrameOfReferenceUID
    assert first["pet"].Units == "BQML"
    # a second call finds it and builds nothing
    assert (
        ensure_mrpet_dataset(dataset, n_train=4, n_val=0, n_test=0, n_misaligned=1, seed=5, **SMALL)
        == dataset
    )


def test_dicom_studies_pair_by_study_uid_and_a_missing_modality_is_named(dataset, tmp_path):
    pairs = pair_dicom_studies(f"{dataset}/studies")
    assert len(pairs) == 5 and all(p["mr"].endswith("MR") and p["pet"].endswith("PT") for p in pairs)
    assert [p["patient"] for p in pairs] == [f"MRPET-{i:03d}" for i in range(5)]
    shutil.copytree(
        f"{dataset}/studies/MRPET-001", tmp_path / "s" / "MRPET-001", ignore=shutil.ignore_patterns("PT")
    )
    with pytest.raises(InputError, match="has no PET series: missing modality"):
        pair_dicom_studies(tmp_path / "s")


def test_volumes_slices_and_labels(dataset):
    entries = mrpet_datalist(f"{dataset}/datalist.json", "training")
    volume = MRPETVolumed("mr_pet", spacing=(6.0, 6.0), size=(48, 48))
    ds = MRPETSliceDataset(entries[:2], volume)
    assert len(ds) == 24 and ds[0]["image"].shape == (2, 48, 48)
    assert (
        ds.labels[:12].sum() == 0 and ds.labels[12:].sum() >= 1
    )  # the normal patient, then one with a tumour
    assert 0.0 <= float(ds[13]["image"].min()) and float(ds[13]["image"].max()) <= 1.0
    assert ds.patients[1]["registration"]["method"] == "world" and ds.patients[1]["pet_units"] == "suv"
    vols = MRPETSliceDataset(
        entries[:2], MRPETVolumed("pet", spacing=(6.0, 6.0), size=(48, 48), min_slices=4), spatial_dims=3
    )
    assert len(vols) == 2 and vols[0]["image"].shape == (1, 48, 48, 12) and vols.labels.tolist() == [0, 1]


def test_missing_modality_and_thin_volume_are_refused(dataset):
    entry = mrpet_datalist(f"{dataset}/datalist.json", "training")[1]
    with pytest.raises(InputError, match="needs a PET image.*missing modality"):
        MRPETVolumed("mr_pet")({k: v for k, v in entry.items() if k != "pet"})
    MRPETVolumed("mr", spacing=(6.0, 6.0), size=(48, 48))(
        {k: v for k, v in entry.items() if k != "pet"}
    )  # MR alone is enough
    with pytest.raises(InputError, match="3-D volume of at least 40 slices"):
        MRPETVolumed("mr", min_slices=40)(entry)


def test_patient_score_is_the_most_suspicious_slice():
    ids, scores, labels = patient_scores(
        ["a", "a", "a", "b", "b"], [0.1, 0.8, 0.3, 0.2, 0.4], [0, 1, 0, 0, 0]
    )
    assert ids == ["a", "b"] and scores.tolist() == [0.8, 0.4] and labels.tolist() == [1, 0]


def test_a_single_slice_file_is_refused_where_a_volume_is_needed(tmp_path):
    from lungcad_transforms.data.image_writer import write_nifti

    pair = make_mrpet_pair(4, "both", **SMALL)
    mr, pet = pair["mr"], pair["pet"]
    k = mr.intensity.shape[-1] // 2
    entry = {"patient": "flat", "mr": str(write_nifti(pair["mr_image"][..., k : k + 1], mr.spacing, mr.origin_lps,
                                                      tmp_path / "mr_slice.nii.gz")),
             "pet": str(write_nifti(pair["pet_suv"], pet.spacing, pet.origin_lps, tmp_path / "pet.nii.gz"))}  # fmt: skip
    # the 3-D network's setting (train.json: min_slices 4 when spatial_dims is 3)
    with pytest.raises(InputError, match=r"mr_slice\.nii\.gz.*has 1 slice\(s\).*at least 4 slices"):
        MRPETVolumed("mr", spacing=(6.0, 6.0), size=(48, 48), min_slices=4)(entry)
    # 2-D slices of mr_pet: the PET must still be registered onto the MR, which needs a volume
    with pytest.raises(InputError, match=r"mr_slice\.nii\.gz.*2-D.*registration needs a 3-D volume"):
        MRPETVolumed("mr_pet", spacing=(6.0, 6.0), size=(48, 48))(entry)
