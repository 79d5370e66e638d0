"""extract_candidates / ExtractCandidatesd: candidates from probability maps."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from lungcad_transforms.data.coords import world_to_voxel
from lungcad_transforms.data.tables import SEGMENTATION_CANDIDATE_COLUMNS, write_results_csv
from lungcad_transforms.transforms.post.dictionary import ExtractCandidatesd
from lungcad_transforms.transforms.post.functional import extract_candidates


def _ras_affine_of_lps_grid(spacing, origin_lps):
    """RAS affine of a grid whose index axes run along +x, +y, +z of LPS (as DICOM/ITK store a CT)."""
    affine = np.diag([-spacing[0], -spacing[1], spacing[2], 1.0])
    affine[:3, 3] = [-origin_lps[0], -origin_lps[1], origin_lps[2]]
    return affine


def _ball(shape, centre_ijk, radius_vox):
    grid = np.stack(np.meshgrid(*[np.arange(s) for s in shape], indexing="ij"), axis=-1)
    return np.sum((grid - np.asarray(centre_ijk)) ** 2, axis=-1) <= radius_vox**2


def test_two_blobs_world_centres_probability_and_size():
    spacing, origin = (0.8, 0.8, 1.25), (-150.0, -120.0, -300.0)
    affine = _ras_affine_of_lps_grid(spacing, origin)
    shape = (96, 96, 64)
    prob = np.zeros(shape, np.float32)
    # two nodules at known LPS positions: a bright 8 mm one and a fainter 5 mm one
    centres_lps = np.array([[-120.0, -90.0, -270.0], [-95.0, -70.0, -250.0]])
    centres_ijk = world_to_voxel(centres_lps, affine)
    big = _ball(shape, centres_ijk[0], 5.0)
    small = _ball(shape, centres_ijk[1], 3.0)
    prob[big] = 0.95
    prob[small] = 0.7
    image = MetaTensor(torch.from_numpy(prob)[None], affine=torch.as_tensor(affine))

    rows = extract_candidates(image, threshold=0.5, seriesuid="1.2.840.99", min_volume_mm3=5.0)

    assert [r["seriesuid"] for r in rows] == ["1.2.840.99"] * 2
    assert [r["probability"] for r in rows] == pytest.approx([0.95, 0.7])  # most probable first
    found = np.array([[r["coordX"], r["coordY"], r["coordZ"]] for r in rows])
    # the balls are centred on voxel centres' rounding of the true points: within half a voxel diagonal
    assert np.linalg.norm(found - centres_lps, axis=1).max() < 0.9
    voxel_mm3 = np.prod(spacing)
    assert rows[0]["volume_mm3"] == pytest.approx(big.sum() * voxel_mm3)
    assert rows[1]["volume_mm3"] == pytest.approx(small.sum() * voxel_mm3)
    assert rows[0]["diameter_mm"] == pytest.approx((6 * big.sum() * voxel_mm3 / np.pi) ** (1 / 3))


def test_weighted_centroid_and_mean_score():
    prob = MetaTensor(torch.zeros(1, 20, 20, 20), affine=torch.eye(4))
    prob[0, 5:8, 5, 5] = torch.tensor([0.6, 0.6, 0.9])  # a 3-voxel line, brightest at the end
    (row,) = extract_candidates(prob, min_volume_mm3=0.0, score="mean")
    assert row["probability"] == pytest.approx(0.7)
    # probability-weighted centroid along i: (5*.6 + 6*.6 + 7*.9) / 2.1 = 6.142857; RAS x -> LPS coordX flips sign
    assert row["coordX"] == pytest.approx(-(5 * 0.6 + 6 * 0.6 + 7 * 0.9) / 2.1)
    assert row["coordY"] == pytest.approx(-5.0)
    assert row["coordZ"] == pytest.approx(5.0)


def test_min_volume_threshold_and_empty_map():
    prob = MetaTensor(torch.zeros(1, 16, 16, 16), affine=torch.diag(torch.tensor([2.0, 2.0, 2.0, 1.0])))
    assert extract_candidates(prob) == []
    prob[0, 2, 2, 2] = 0.9  # 8 mm^3: below the default 10 mm^3
    prob[0, 8:10, 8:10, 8:10] = 0.9  # 64 mm^3
    rows = extract_candidates(prob)
    assert len(rows) == 1 and rows[0]["volume_mm3"] == pytest.approx(64.0)
    assert extract_candidates(prob, threshold=0.95) == []


def test_bad_input():
    with pytest.raises(ValueError, match="affine"):
        extract_candidates(np.zeros((8, 8, 8), np.float32))
    with pytest.raises(ValueError, match="one probability channel"):
        extract_candidates(MetaTensor(torch.zeros(2, 8, 8, 8)))
    with pytest.raises(ValueError, match="3-D"):
        extract_candidates(MetaTensor(torch.zeros(8, 8)), affine=np.eye(4))
    with pytest.raises(ValueError, match="score"):
        extract_candidates(MetaTensor(torch.zeros(1, 8, 8, 8)), score="median")


def test_dictionary_transform_and_luna16_csv(tmp_path):
    prob = MetaTensor(torch.zeros(1, 16, 16, 16), affine=torch.eye(4), meta={"seriesuid": "from-meta"})
    prob[0, 3:7, 3:7, 3:7] = 0.8
    out = ExtractCandidatesd("prob")({"prob": prob})
    assert out["candidates"][0]["seriesuid"] == "from-meta"
    out = ExtractCandidatesd("prob", output_key="rows")({"prob": prob, "seriesuid": "1.3.6"})
    assert out["rows"][0]["seriesuid"] == "1.3.6"

    path = write_results_csv(out["rows"], tmp_path / "candidates.csv")
    with open(path, newline="") as handle:
        table = list(csv.DictReader(handle))
    assert tuple(table[0]) == SEGMENTATION_CANDIDATE_COLUMNS
    assert float(table[0]["coordX"]) == pytest.approx(-4.5) and float(table[0]["volume_mm3"]) == 64.0
