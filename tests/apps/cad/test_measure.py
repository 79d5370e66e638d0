"""Nodule measurements: Lung-RADS diameters, volume, density type, size category, side; against phantom truth."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lungcad_transforms.apps.cad.measure import (
    axial_diameters,
    density_type,
    lung_rads_size_category,
    lung_side,
    measure_nodule,
)


def _ellipse(shape, centre, radii, spacing):
    grid = np.indices(shape).astype(float)
    d = sum(((grid[a] - centre[a]) * spacing[a] / radii[a]) ** 2 for a in range(3))
    return d <= 1.0


def test_axial_diameters_of_an_ellipse_on_anisotropic_pixels_are_its_axes():
    spacing = (0.7, 0.7, 2.5)
    mask = _ellipse((80, 80, 9), (40, 40, 4), (10.0, 5.0, 6.0), spacing)  # 20 x 10 mm in the axial plane
    long_mm, short_mm, z = axial_diameters(mask, spacing)
    assert z == 4  # the largest axial section is the middle one
    assert long_mm == pytest.approx(20.0, abs=0.8)
    assert short_mm == pytest.approx(10.0, abs=0.8)


def test_axial_diameters_of_a_rotated_ellipse_follow_its_axes_not_the_grid():
    spacing = (0.5, 0.5, 1.0)
    x, y = np.mgrid[:100, :100].astype(float)
    u, v = ((x - 50) + (y - 50)) / math.sqrt(2) * 0.5, ((x - 50) - (y - 50)) / math.sqrt(2) * 0.5
    mask = np.zeros((100, 100, 3), bool)
    mask[..., 1] = (u / 12.0) ** 2 + (v / 4.0) ** 2 <= 1.0  # 24 x 8 mm at 45 degrees
    long_mm, short_mm, _ = axial_diameters(mask, spacing)
    assert long_mm == pytest.approx(24.0, abs=0.8)
    assert short_mm == pytest.approx(8.0, abs=0.8)


def test_axial_diameters_of_an_empty_mask():
    assert axial_diameters(np.zeros((4, 4, 4), bool), (1, 1, 1)) == (0.0, 0.0, -1)


def test_density_type_from_the_core_hu():
    mask = _ellipse((30, 30, 30), (15, 15, 15), (8.0, 8.0, 8.0), (1, 1, 1))
    lung = np.full(mask.shape, -850.0)
    assert density_type(np.where(mask, 30.0, lung), mask)[0] == "solid"
    assert density_type(np.where(mask, -600.0, lung), mask)[0] == "ground-glass"
    core = _ellipse(mask.shape, (15, 15, 15), (4.0, 4.0, 4.0), (1, 1, 1))
    part = np.where(core, 20.0, np.where(mask, -600.0, lung))
    kind, fraction = density_type(part, mask)
    assert kind == "part-solid" and 0.05 < fraction < 0.5


@pytest.mark.parametrize(
    "kind, size, solid, category",
    [
        ("solid", 5.9, 5.9, "2"), ("solid", 6.0, 6.0, "3"), ("solid", 7.96, 7.96, "4A"),  # 7.96 rounds to 8.0
        ("solid", 14.9, 14.9, "4A"), ("solid", 15.0, 15.0, "4B"),
        ("part-solid", 5.5, 2.0, "2"), ("part-solid", 10.0, 5.9, "3"), ("part-solid", 10.0, 6.0, "4A"),
        ("part-solid", 12.0, 8.0, "4B"), ("ground-glass", 29.9, 0.0, "2"), ("ground-glass", 30.0, 0.0, "3"),
    ],
)  # fmt: skip
def test_lung_rads_v2022_size_categories(kind, size, solid, category):
    assert lung_rads_size_category(kind, size, solid) == category


def test_lung_side_in_ras_index_space():
    lungs = np.zeros((100, 10, 10), bool)
    lungs[10:40] = lungs[55:95] = True  # left lung at low i (patient left), larger right lung at high i
    assert lung_side((30, 5, 5), lungs) == "left"
    assert lung_side((60, 5, 5), lungs) == "right"


def test_measurements_of_phantom_nodules_match_their_ground_truth():
    """Mean diameter within 1.5 mm and volume within 25 % for every phantom nodule of 6 mm or more."""
    from lungcad_transforms.apps.phantoms.ct import make_ct_phantom

    checked = 0
    for seed in (1,):
        ct = make_ct_phantom(
            (128, 128, 80), spacing=(0.8, 0.8, 1.25), seed=seed,
            nodule_kinds=("solid", "part_solid", "ground_glass", "juxtapleural"), nodule_diameter_mm=(6.0, 18.0),
        )  # fmt: skip
        # the phantom is stored in LPS index order; measurements work on RAS: flip the in-plane axes
        hu = ct.hu[::-1, ::-1].astype(np.float32)
        labels = ct.nodule_labels[::-1, ::-1]
        lungs = ct.lungs[::-1, ::-1]
        for n, nodule in enumerate(ct.nodules, start=1):
            if nodule.diameter_mm < 6.0:
                continue
            mask = labels == n
            centre = np.argwhere(mask).mean(axis=0)
            m = measure_nodule(hu, mask, ct.spacing, lungs, centre)
            truth_volume = math.pi * nodule.diameter_mm**3 / 6.0
            assert abs(m.mean_diameter_mm - nodule.diameter_mm) <= 1.5, (nodule, m)
            assert abs(m.volume_mm3 - truth_volume) <= 0.25 * truth_volume, (nodule, m)
            expected = {"ground_glass": "ground-glass", "part_solid": "part-solid"}.get(nodule.kind, "solid")
            assert m.density == expected, (nodule, m)
            # LPS x grows towards the patient's left
            side = "left" if nodule.center_lps[0] > _midline_x(ct) else "right"
            assert m.side == side, (nodule, m)
            checked += 1
    assert checked >= 4


def _midline_x(ct) -> float:
    """LPS x of the middle between the lungs' outer edges."""
    columns = np.flatnonzero(ct.lungs.any(axis=(1, 2)))
    middle = 0.5 * (columns[0] + columns[-1])
    return ct.origin_lps[0] + middle * ct.spacing[0]


def _blurred_nodule(extra=None):
    """A 7 mm solid nodule (40 HU) in -850 HU lung at 0.7 mm, blurred as a reconstruction kernel does."""
    from scipy import ndimage

    spacing = (0.7, 0.7, 0.7)
    r = np.sqrt(sum((g - 20.0) ** 2 for g in np.indices((41, 41, 41)))) * 0.7
    dense = r <= 3.5 if extra is None else (r <= 3.5) | extra
    hu = ndimage.gaussian_filter(np.where(dense, 40.0, -850.0), 0.6).astype(np.float32)
    return hu, r, spacing


@pytest.mark.parametrize("mask_radius_mm", [2.8, 4.2])  # one voxel too small / too large all round
def test_refined_mask_follows_the_partial_volume_edge(mask_radius_mm):
    from lungcad_transforms.apps.cad.measure import refine_nodule_mask

    hu, r, spacing = _blurred_nodule()
    truth = r <= 3.5
    mask = r <= mask_radius_mm
    assert abs(mask.sum() / truth.sum() - 1) > 0.4  # the network's mask is far off in volume
    refined = refine_nodule_mask(hu, mask, spacing)
    assert abs(refined.sum() / truth.sum() - 1) < 0.05
    assert axial_diameters(refined, spacing) == pytest.approx(axial_diameters(truth, spacing))


def test_refined_mask_does_not_follow_an_attached_vessel():
    from lungcad_transforms.apps.cad.measure import refine_nodule_mask

    y, z = np.indices((41, 41))
    vessel = np.broadcast_to((((y - 20) ** 2 + (z - 20) ** 2) * 0.49 <= 0.8**2)[None], (41, 41, 41))  # 1.6 mm
    hu, r, spacing = _blurred_nodule(extra=vessel)
    refined = refine_nodule_mask(hu, r <= 3.5, spacing)
    assert not refined[r > 3.5 + 1.5].any()  # nothing beyond the search distance
    assert abs(refined.sum() / (r <= 3.5).sum() - 1) < 0.1


def test_refined_mask_keeps_a_mask_that_is_not_denser_than_its_surroundings():
    from lungcad_transforms.apps.cad.measure import refine_nodule_mask

    hu = np.full((20, 20, 20), -850.0, np.float32)
    mask = np.zeros(hu.shape, bool)
    mask[8:12, 8:12, 8:12] = True
    assert np.array_equal(refine_nodule_mask(hu, mask, (1.0, 1.0, 1.0)), mask)
    assert not refine_nodule_mask(hu, np.zeros_like(mask), (1.0, 1.0, 1.0)).any()
