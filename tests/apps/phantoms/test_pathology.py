"""Dense chest pathology painted into CT phantoms (add_pathology, organ_masks, the opt-in generator hook)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from lungcad_transforms.apps.phantoms.ct import make_ct_phantom
from lungcad_transforms.apps.phantoms.pathology import (
    PATHOLOGY_KINDS,
    PathologyCTPhantom,
    add_pathology,
    organ_masks,
)
from lungcad_transforms.apps.phantoms.tissues import TISSUES

SHAPE, SPACING = (160, 160, 112), (2.2, 2.2, 2.5)  # a 352 x 352 x 280 mm adult chest


@pytest.fixture(scope="module")
def plain():
    return make_ct_phantom(SHAPE, spacing=SPACING, seed=3, n_nodules=0)


@pytest.fixture(scope="module")
def sick(plain):
    return add_pathology(plain, seed=3)


def test_findings_and_ground_truth(plain, sick):
    assert isinstance(sick, PathologyCTPhantom)
    assert [f.kind for f in sick.findings] == list(PATHOLOGY_KINDS)
    assert [f.label for f in sick.findings] == [1, 2, 3, 4]
    by_kind = {f.kind: f for f in sick.findings}
    assert 30.0 <= by_kind["chest_wall_tumour"].size_mm <= 70.0
    assert 30.0 <= by_kind["hilar_tumour"].size_mm <= 50.0
    assert by_kind["chest_wall_tumour"].side == "right" and by_kind["effusion"].side == "left"
    for f in sick.findings:
        voxels = sick.pathology_labels == f.label
        assert np.count_nonzero(voxels) == f.voxels > 500
        # tumours and consolidation stay lung; the effusion replaces the lung it compresses
        assert sick.lungs[voxels].all() if f.intrapulmonary else not sick.lungs[voxels].any()
        assert plain.lungs[voxels].all(), "every finding lies where the lung was"
    assert np.array_equal(sick.lungs, plain.lungs & (sick.pathology_labels != 4))
    # the input is not modified
    assert not np.array_equal(plain.hu, sick.hu) and plain.tissues is not sick.tissues


def test_findings_are_dense_and_against_the_lung_boundary(plain, sick):
    for f in sick.findings:
        hu = sick.hu[sick.pathology_labels == f.label].astype(float)
        low, high = (-10.0, 40.0) if f.kind == "effusion" else (0.0, 110.0)
        if f.kind == "consolidation":  # its air bronchograms keep air
            hu = hu[sick.tissues[sick.pathology_labels == f.label] != TISSUES["airway"]]
        assert low < np.median(hu) < high, (f.kind, np.median(hu))
        assert np.mean(hu > -350) > 0.95, f.kind  # the -350 HU threshold drops them
    # the chest-wall tumour touches the costal pleura, the hilar one the mediastinum: non-lung voxels of
    # the chest wall / the mediastinum lie next to them
    an = plain.anatomy
    x = (plain.origin_lps[0] + SPACING[0] * np.arange(SHAPE[0]))[:, None, None]
    for label, medial in ((1, False), (2, True)):
        rim = ndimage.binary_dilation(sick.pathology_labels == label, iterations=2) & ~plain.lungs
        tissue = plain.tissues[rim]
        if medial:
            assert (
                np.isin(tissue, [TISSUES[t] for t in ("fat", "blood", "vessel", "airway_wall")]).mean() > 0.5
            )
            assert (np.abs(np.broadcast_to(x, SHAPE)[rim] - an.xm) < 0.5 * an.ac).mean() > 0.9
        else:
            assert (
                np.isin(tissue, [TISSUES[t] for t in ("muscle", "cortical_bone", "marrow", "fat")]).mean()
                > 0.9
            )
    assert by_voxels_posterior(sick, 4) > 0.8, "the effusion lies in the dependent (posterior) half"


def by_voxels_posterior(ct, label: int) -> float:
    j = np.argwhere(ct.pathology_labels == label)[:, 1]
    lung_j = np.argwhere(ct.lungs)[:, 1]
    return float(np.mean(j > np.median(lung_j)))


def test_organ_masks(sick):
    organs = organ_masks(sick)
    assert set(organs) == {"heart", "liver", "stomach"}
    for name, voxels in organs.items():
        assert np.count_nonzero(voxels) * np.prod(SPACING) / 1000 > 30.0, name  # at least 30 ml
        assert not (voxels & sick.lungs).any(), name


def test_opt_in_hook_and_bad_input(plain):
    small = make_ct_phantom((64, 64, 32), seed=1, n_nodules=1)
    assert type(small) is not PathologyCTPhantom  # without the argument nothing changes
    hooked = make_ct_phantom(SHAPE, spacing=SPACING, seed=3, n_nodules=0, pathology=("effusion",))
    assert isinstance(hooked, PathologyCTPhantom) and [f.kind for f in hooked.findings] == ["effusion"]
    np.testing.assert_array_equal(hooked.tissues != TISSUES["fluid"], ~(hooked.pathology_labels > 0))
    with pytest.raises(ValueError, match="unknown pathology"):
        add_pathology(plain, ("tumour",))
    with pytest.raises(ValueError, match="lungs"):
        add_pathology(make_ct_phantom((64, 64, 32), seed=1, lungs="none"))
    with pytest.raises(ValueError, match="does not fit"):
        add_pathology(small, ("hilar_tumour",), tumour_diameter_mm=(60.0, 70.0))
