"""RandPhysicalShift(d): one draw per call, the same millimetres at every scale."""

from __future__ import annotations

import numpy as np
import torch
from monai.data import MetaTensor
from monai.transforms import Compose, ConcatItemsd, RandAffined, RandFlipd, RandRotate90d

from lungcad_transforms.transforms.spatial.array import RandPhysicalShift
from lungcad_transforms.transforms.spatial.dictionary import RandPhysicalShiftd
from lungcad_transforms.transforms.spatial.functional import PATCH_KEYS

SPACING = (0.8, 0.7, 1.5)  # anisotropic, like a real chest CT
ORIGIN = (-40.3, -35.1, -120.0)  # LPS world of voxel (0, 0, 0)
SHAPE = (96, 100, 48)
SCALES = ((20.0, 20.0, 20.0), (30.0, 30.0, 30.0), (40.0, 40.0, 40.0))


def _centroid(patch: np.ndarray) -> np.ndarray:
    weights = np.clip(patch - np.median(patch), 0, None)
    grid = np.indices(patch.shape).reshape(3, -1)
    return grid @ weights.ravel() / weights.sum()


def test_physical_shift_moves_every_scale_by_the_same_millimetres():
    sample = {}
    for key, voxel in zip(PATCH_KEYS, (1.25, 1.875, 2.5), strict=True):
        grid = np.indices((16, 16, 16), dtype=np.float64)
        blob = np.exp(-sum((g - 7.5) ** 2 for g in grid) * voxel**2 / (2 * 3.0**2))
        affine = torch.diag(torch.tensor([voxel, voxel, voxel, 1.0], dtype=torch.float64))
        sample[key] = MetaTensor(torch.as_tensor(blob[None], dtype=torch.float32), affine=affine)
    shifter = RandPhysicalShiftd(PATCH_KEYS, max_shift_mm=3.0, prob=1.0).set_random_state(7)
    out = shifter(sample)
    moved_mm = []
    for key, voxel in zip(PATCH_KEYS, (1.25, 1.875, 2.5), strict=True):
        moved_mm.append((_centroid(np.asarray(out[key][0])) - 7.5) * voxel)
    assert np.abs(moved_mm[0]).max() > 0.5  # it did move
    # the affine follows the grid: the blob is still at the same world position
    for key in PATCH_KEYS:
        world = np.asarray(out[key].affine) @ np.append(_centroid(np.asarray(out[key][0])), 1.0)
        np.testing.assert_allclose(
            world[:3], np.asarray(sample[key].affine)[:3, :3] @ np.full(3, 7.5), atol=0.3
        )
    np.testing.assert_allclose(moved_mm[1], moved_mm[0], atol=0.25)
    np.testing.assert_allclose(moved_mm[2], moved_mm[0], atol=0.25)
    # the array twin draws its own shift, within the limit
    single = RandPhysicalShift(max_shift_mm=3.0, prob=1.0).set_random_state(1)
    single(sample["patch_s1"])
    assert np.all(np.abs(single.shift_mm) <= 3.0)


def test_augmentation_draws_once_and_applies_the_same_to_all_scales():
    # a blob off-centre towards +x at every scale: after flips/rotations it must sit on the same side in all
    sample = {}
    for key, offset in zip(PATCH_KEYS, (4.0, 2.7, 2.0), strict=True):
        patch = np.zeros((1, 16, 16, 16), np.float32)
        patch[0, int(7.5 + offset), 7:9, 7:9] = 1.0
        sample[key] = MetaTensor(torch.from_numpy(patch))
    augment = Compose(
        [
            RandFlipd(PATCH_KEYS, prob=0.5, spatial_axis=0),
            RandFlipd(PATCH_KEYS, prob=0.5, spatial_axis=1),
            RandRotate90d(PATCH_KEYS, prob=0.5, max_k=3, spatial_axes=(0, 1)),
            RandAffined(PATCH_KEYS, prob=1.0, rotate_range=(0, 0, 0.2), scale_range=(0.1, 0.1, 0.1)),
            ConcatItemsd(PATCH_KEYS, name="image", dim=0),
        ]
    ).set_random_state(3)
    for _ in range(8):
        image = np.asarray(augment(dict(sample))["image"])
        directions = [(_centroid(image[s]) - 7.5)[:2] for s in range(3)]
        unit = [d / np.linalg.norm(d) for d in directions]
        assert np.dot(unit[0], unit[1]) > 0.95 and np.dot(unit[0], unit[2]) > 0.95
