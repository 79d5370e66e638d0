"""Pasting an in-painted cube back: only the box changes, and removal does not paste the nodule's edges back."""

from __future__ import annotations

import numpy as np
import pytest

from lungcad_transforms.apps.ctgan.cubes import CUBE_SIZE, paste_cube

SPACING = np.array([1.0, 1.0, 1.25])
SHAPE = (72, 72, 56)


def _lung_with_nodule(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Noisy lung (-850 HU, SD 40) with a 12 mm solid nodule (0 HU) at the centre; its affine and nodule mask."""
    rng = np.random.default_rng(seed)
    hu = (-850 + 40 * rng.standard_normal(SHAPE)).astype(np.float32)
    affine = np.diag([*SPACING, 1.0])
    centre = (np.array(SHAPE) - 1) / 2
    r = np.sqrt((((np.indices(SHAPE).T - centre) * SPACING) ** 2).sum(-1)).T
    nodule = r <= 6.0
    hu[nodule] = (0 + 40 * rng.standard_normal(nodule.sum())).astype(np.float32)
    return hu, affine, nodule


def _centre_lps(affine: np.ndarray) -> np.ndarray:
    ras = affine[:3, :3] @ ((np.array(SHAPE) - 1) / 2) + affine[:3, 3]
    return ras * np.array([-1.0, -1.0, 1.0])


@pytest.mark.parametrize("texture", ["local", "neighbour"])
def test_only_the_box_changes(texture: str):
    hu, affine, _ = _lung_with_nodule()
    lung = np.full((CUBE_SIZE,) * 3, -850.0)
    out, box = paste_cube(hu, affine, _centre_lps(affine), lung, texture=texture)
    outside = np.ones(SHAPE, bool)
    outside[box] = False
    assert np.array_equal(out[outside], hu[outside]) and not np.array_equal(out[box], hu[box])
    assert all((s.stop - s.start) * sp <= 16 + 2 * sp for s, sp in zip(box, SPACING, strict=True))


def test_removal_texture_comes_from_a_nodule_free_neighbour():
    hu, affine, nodule = _lung_with_nodule()
    lung = np.full((CUBE_SIZE,) * 3, -850.0)  # what a perfect remover in-paints
    at = _centre_lps(affine)
    local, _ = paste_cube(hu, affine, at, lung, blend_mm=1.0, texture="local")
    neighbour, _ = paste_cube(hu, affine, at, lung, blend_mm=1.0, texture="neighbour")
    wide, _ = paste_cube(hu, affine, at, lung, blend_mm=3.0, texture="neighbour")
    # the former nodule's voxels: with its own residual, its rim comes back brighter than lung and the
    # noise is inflated; with a neighbour's, it is lung with lung noise
    assert neighbour[nodule].mean() == pytest.approx(-850, abs=8) and neighbour[nodule].std() < 50
    assert local[nodule].std() > 1.5 * neighbour[nodule].std()
    # a 3 mm blend keeps part of a 12 mm nodule's rim, 2 mm inside the 16 mm box
    assert wide[nodule].mean() > neighbour[nodule].mean() + 10
    with pytest.raises(ValueError, match="texture"):
        paste_cube(hu, affine, _centre_lps(affine), lung, texture="mirror")
