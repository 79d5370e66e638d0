"""Synthetic nodule models, their placement in a lung and their insertion with the scan's noise."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from lungcad_transforms.apps.hybrid.backgrounds import scan_noise
from lungcad_transforms.apps.hybrid.insertion import NoiseSource, insert_nodules
from lungcad_transforms.apps.hybrid.nodule_models import (
    HYBRID_NODULE_KINDS,
    draw_diameter_mm,
    draw_nodule_model,
)
from lungcad_transforms.apps.hybrid.placement import lung_maps, place_nodules

SPACING = np.array([0.7, 0.7, 1.25])


def _chest(shape=(160, 160, 64), seed=0):
    """Lung at -850 HU with noise, a 'vessel' tube, chest wall at 40 HU around it."""
    rng = np.random.default_rng(seed)
    hu = np.full(shape, 40.0, np.float32)
    lungs = np.zeros(shape, bool)
    lungs[36:-36, 20:-20, 4:-4] = True
    hu[lungs] = -850.0
    hu[70:74, 70:74, 4:-4] = 30.0  # a vessel running along z
    return hu + rng.normal(0, 25, shape).astype(np.float32), lungs


def test_diameters_follow_the_luna16_distribution():
    rng = np.random.default_rng(0)
    d = np.array([draw_diameter_mm(rng, "solid") for _ in range(4000)])
    assert d.min() >= 3.0 and d.max() <= 30.0
    # LUNA16 annotations.csv: median 6.4 mm, 24 % of 10 mm or more
    assert 5.8 <= np.median(d) <= 7.2
    assert 0.18 <= (d >= 10).mean() <= 0.30
    assert min(draw_diameter_mm(rng, "part_solid") for _ in range(200)) >= 6.0


@pytest.mark.parametrize("kind", HYBRID_NODULE_KINDS)
def test_occupancy_volume_is_that_of_the_nominal_sphere(kind):
    model = draw_nodule_model(np.random.default_rng(3), kind, np.array([20.0, 20.0, 20.0]), 12.0)
    spacing = np.array([1.0, 1.0, 1.25])
    coords = tuple(np.arange(0, 40, s) + 0.5 * s for s in spacing)
    body, core = model.occupancy(coords, spacing)
    volume = body.sum() * spacing.prod()
    sphere = 4 / 3 * np.pi * 6.0**3
    # lobulation and ellipticity keep the volume; spicules add a little
    upper = 1.6 if kind == "spiculated" else 1.15
    assert 0.85 * sphere <= volume <= upper * sphere
    if kind == "part_solid":
        assert 0 < core.sum() < body.sum() and np.all(core <= body + 1e-6)
    else:
        assert core.sum() == 0


def test_inserted_nodule_has_its_attenuation_the_scans_noise_and_a_label():
    hu, lungs = _chest()
    before = hu.copy()
    rng = np.random.default_rng(1)
    noise_sd = scan_noise(hu, SPACING)
    assert 20 <= noise_sd <= 30  # the 25 HU put in
    model = draw_nodule_model(rng, "solid", np.array([40.0, 80.0, 40.0]), 10.0)
    out, labels = insert_nodules(hu, lungs, SPACING, [model], NoiseSource(hu, SPACING, noise_sd, rng))
    assert np.array_equal(hu, before)  # the input is not modified
    inside = labels == 1
    volume = inside.sum() * SPACING.prod()
    assert 0.8 * (4 / 3 * np.pi * 125) <= volume <= 1.2 * (4 / 3 * np.pi * 125)
    core = ndimage.binary_erosion(inside, iterations=2)  # away from the partial-volume edge
    assert abs(float(out[core].mean()) - model.hu) < 15
    # the nodule carries the scan's noise, not a flat value
    assert 0.6 * noise_sd <= float(out[core].std()) <= 1.6 * noise_sd
    # partial volume and the PSF spread the edge beyond the label, into the lung around it
    rim = ndimage.binary_dilation(inside, iterations=2) & ~inside
    assert -800 < float((out - hu)[rim].mean() + hu[rim].mean()) and float((out - hu)[rim].mean()) > 50


def test_placement_respects_the_kind_and_the_keep_out():
    hu, lungs = _chest()
    maps = lung_maps(hu, lungs, SPACING)
    rng = np.random.default_rng(2)
    keep_out = [(np.array([56.0, 56.0, 40.0]), 25.0)]
    requests = [(k, 8.0) for k in HYBRID_NODULE_KINDS]
    placed, skipped = place_nodules(rng, maps, requests, keep_out=keep_out)
    assert not skipped and [m.kind for m in placed] == list(HYBRID_NODULE_KINDS)
    for m in placed:
        idx = tuple(np.rint(m.center / SPACING).astype(int))
        depth = maps.depth[idx]
        if m.kind == "juxtapleural":
            assert 0.3 * m.radius - 1 <= depth <= 0.7 * m.radius + 1
        else:
            assert depth >= m.radius
        if m.kind == "juxtavascular":
            assert maps.to_big_vessel[idx] <= m.radius + 1
        assert np.linalg.norm(m.center - keep_out[0][0]) >= 25.0 + m.reach_mm
    for a in placed:
        for b in placed:
            if a is not b:
                assert np.linalg.norm(a.center - b.center) >= a.reach_mm + b.reach_mm


def test_a_placement_that_cannot_fit_is_reported_not_raised():
    hu, lungs = _chest(shape=(40, 40, 16))  # a lung 14 mm wide, 10 mm tall
    maps = lung_maps(hu, lungs, SPACING)
    placed, skipped = place_nodules(np.random.default_rng(0), maps, [("solid", 30.0), ("solid", 4.0)])
    assert len(skipped) >= 1 and "solid 30.0 mm" in skipped[0]
    assert all(m.diameter_mm < 30.0 for m in placed)
