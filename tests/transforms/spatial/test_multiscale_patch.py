"""Multi-scale physical patches: the candidate centre at every scale, windowed HU."""

from __future__ import annotations

import numpy as np
import pytest
from blob_scans import SCALES, write_two_scans

import lungcad_transforms.data.image_reader as lungcad_io
from lungcad_transforms.transforms.spatial.array import MultiScalePatch
from lungcad_transforms.transforms.spatial.functional import extract_multiscale_patches


def _centroid(patch: np.ndarray) -> np.ndarray:
    weights = np.clip(patch - np.median(patch), 0, None)
    grid = np.indices(patch.shape).reshape(3, -1)
    return grid @ weights.ravel() / weights.sum()


@pytest.fixture()
def two_scans(tmp_path):
    return write_two_scans(tmp_path)


def test_candidate_centre_is_the_patch_centre_at_every_scale(two_scans):
    scans, _, centres = two_scans
    image = lungcad_io.load_image(scans[0])  # RAS MetaTensor, as every loader in the project gives it
    patches = MultiScalePatch(SCALES, (16, 16, 16))(image, np.asarray(centres["scan.a"]))
    assert len(patches) == 2
    for patch, centre in zip(patches, centres["scan.a"], strict=True):
        assert patch.shape == (3, 16, 16, 16)
        affines = patch.meta["scale_affines"]
        for s, extent in enumerate(SCALES):
            # the blob sits in the middle of the grid: index 7.5 along each axis
            np.testing.assert_allclose(_centroid(np.asarray(patch[s])), [7.5, 7.5, 7.5], atol=0.15)
            # and the grid centre maps back to the candidate's LUNA16 position (RAS -> LPS: x, y negate)
            ras = affines[s] @ np.array([7.5, 7.5, 7.5, 1.0])
            np.testing.assert_allclose([-ras[0], -ras[1], ras[2]], centre, atol=1e-6)
            # each scale spans its physical size
            np.testing.assert_allclose(np.linalg.norm(affines[s][:3, :3], axis=0) * 16, extent[0])


def test_patch_intensities_are_the_windowed_hu(two_scans):
    scans, _, centres = two_scans
    image = lungcad_io.load_image(scans[0])
    from lungcad_transforms.data.coords import world_to_voxel

    voxels = world_to_voxel(centres["scan.a"][0], image.affine)
    patches, _ = extract_multiscale_patches(image, image.affine, voxels, SCALES, (16, 16, 16))
    # background -800 HU -> (200 / 1400) on the [0, 1] scale of the -1000..400 HU window
    assert np.median(patches[0, 2]) == pytest.approx(200.0 / 1400.0, abs=0.01)
    assert patches.max() <= 1.0 and patches.min() >= 0.0
