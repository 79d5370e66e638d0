"""Dense pathology inside the lung mask: LungMask's enclosure fill on pathology phantoms and real scans."""

from __future__ import annotations

import cc3d
import numpy as np
import pytest
from lung_cases import dice, load_ras
from skimage.morphology import convex_hull_image

from lungcad_transforms.apps.phantoms.ct import make_ct_phantom
from lungcad_transforms.apps.phantoms.pathology import PATHOLOGY_KINDS, organ_masks
from lungcad_transforms.data.coords import world_to_voxel
from lungcad_transforms.transforms.lung.array import LungMask
from lungcad_transforms.transforms.lung.enclosure import _AXES, _in_plane_hull, _obstacles, lung_identities

SHAPE, SPACING = (160, 160, 112), (2.2, 2.2, 2.5)  # a 352 x 352 x 280 mm adult chest
CPTAC = "chest_ct/cptac_c3n00247_ct/C3N-00247_chest_ct_B70f.nii.gz"


@pytest.fixture(scope="module", params=[3, 7])
def sick(request):
    ct = make_ct_phantom(SHAPE, spacing=SPACING, seed=request.param, n_nodules=0, pathology=PATHOLOGY_KINDS)
    before = LungMask(dilation_mm=0, spacing=SPACING, fill_enclosed=False)(ct.hu).astype(bool)
    after = LungMask(dilation_mm=0, spacing=SPACING)(ct.hu).astype(bool)
    return ct, before, after


def test_tumours_and_consolidation_inside_the_undilated_mask(sick):
    ct, before, after = sick
    for f in ct.findings:
        voxels = ct.pathology_labels == f.label
        inside_before, inside_after = before[voxels].mean(), after[voxels].mean()
        if f.kind.endswith("tumour"):
            assert inside_before < 0.5 and inside_after >= 0.95, (f.kind, inside_before, inside_after)
        elif f.kind == "consolidation":
            assert inside_before < 0.1 and inside_after >= 0.85, (f.kind, inside_before, inside_after)
        else:  # pleural effusion stays out
            assert inside_after <= 0.05, (f.kind, inside_after)
    assert (after | before).sum() == after.sum(), "the fill only adds"


def test_dice_organs_and_both_lungs_whole(sick):
    ct, before, after = sick
    assert dice(after, ct.lungs) >= 0.98 > dice(before, ct.lungs)
    for name, organ in organ_masks(ct).items():
        assert after[organ].mean() <= 0.01, name
    # both lungs whole: one piece each or joined by the airways, nothing else of size
    labels = cc3d.connected_components(after, connectivity=6)
    sizes = np.bincount(labels.ravel())[1:]
    big = np.isin(labels, np.flatnonzero(sizes >= 0.2 * sizes.max()) + 1)
    assert big.sum() >= 0.99 * after.sum()
    x = ct.origin_lps[0] + SPACING[0] * np.arange(SHAPE[0])
    for side in (x < ct.anatomy.xm, x >= ct.anatomy.xm):
        lung = ct.lungs & side[:, None, None]
        assert big[lung].mean() > 0.97 and big[side].sum() * np.prod(SPACING) / 1000 > 1000.0


def test_fill_can_be_switched_off_and_options_checked():
    ct = make_ct_phantom((96, 96, 48), seed=4, nodule_kinds=("solid",))
    off = LungMask(dilation_mm=0, spacing=ct.spacing, fill_enclosed=False)(ct.hu)
    assert off.shape == ct.hu.shape and dice(off, ct.lungs) > 0.97
    for bad in ({"enclosed_max_mm": 0.0}, {"enclosed_min_axes": 0}, {"enclosed_max_hu": -400.0}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            LungMask(**bad)


def test_lung_identities_split_two_lungs_joined_by_an_airway():
    lungs = np.zeros((20, 40, 60), bool)
    lungs[2:18, 5:35, 4:26] = True
    lungs[2:18, 5:35, 34:56] = True
    lungs[8:10, 18:20, 26:34] = True  # a 2 mm bronchus between them
    ident = lung_identities(lungs, (1.0, 1.0, 1.0), split_mm=4.0)
    assert set(np.unique(ident).tolist()) == {0, 1, 2} and not ident[~lungs].any()
    left, right = ident[2:18, 5:35, 4:26], ident[2:18, 5:35, 34:56]
    (a, b) = (np.bincount(left.ravel()).argmax(), np.bincount(right.ravel()).argmax())
    assert {a, b} == {1, 2} and (left == a).mean() > 0.97 and (right == b).mean() > 0.97
    assert not (left == b).any() and not (right == a).any()


def test_in_plane_hull_contains_the_convex_hull_and_little_more():
    rng = np.random.default_rng(0)
    lung = np.zeros((3, 50, 60), bool)
    lung[0, 10:40, 5:20] = True
    lung[0, 20:30, 40:55] = True
    lung[1][rng.random((50, 60)) < 0.002] = True
    hull = _in_plane_hull(lung)
    for k in (0, 1):
        exact = convex_hull_image(lung[k])
        assert hull[k][exact].all() and hull[k].sum() <= 1.12 * exact.sum() + 20
    assert not hull[2].any()


def test_real_chest_ct_lungs_whole_and_dense_additions_only(real_data):
    path = real_data / CPTAC
    if not path.exists():
        pytest.skip("CPTAC chest CT missing from the real test data")
    image = load_ras(path)
    hu = image.numpy()[0]
    before = LungMask(dilation_mm=0, fill_enclosed=False)(image).numpy()[0].astype(bool)
    after = LungMask(dilation_mm=0)(image).numpy()[0].astype(bool)
    voxel_ml = float(np.prod(image.pixdim.numpy())) / 1000
    added = after & ~before
    assert not (before & ~after).any()
    # dense tissue, and the air it encloses (bronchi in it) filled with it
    assert added.sum() < 0.01 * before.sum() and np.median(hu[added]) > -350
    # both lungs in one piece (joined by the trachea), each over a litre
    labels = cc3d.connected_components(after, connectivity=6)
    lung = labels == np.argmax(np.bincount(labels.ravel())[1:]) + 1
    half = hu.shape[0] // 2
    assert lung[:half].sum() * voxel_ml > 1000 and lung[half:].sum() * voxel_ml > 1000
    # the real nodule at the right base, against the diaphragm and the heart (not enclosed by lung):
    # the fill does not take it in (its fraction inside is the threshold pipeline's, see the docs)
    centre = world_to_voxel([[-82.0, -191.0, -192.0]], image.affine)[0]
    grid = np.meshgrid(*[np.arange(n) for n in hu.shape], indexing="ij")
    near = sum(((g - c) * s) ** 2 for g, c, s in zip(grid, centre, image.pixdim.numpy(), strict=True)) <= 144
    nodule = near & (hu > -300)
    assert 0.5 < before[nodule].mean() <= after[nodule].mean() < 0.9


@pytest.mark.parametrize("case", ["lidc_0002", "lidc_0003"])
def test_real_slabs_unchanged_by_the_fill(case, request):
    image = load_ras(request.getfixturevalue(case))
    before = LungMask(dilation_mm=0, fill_enclosed=False)(image).numpy()
    np.testing.assert_array_equal(LungMask(dilation_mm=0)(image).numpy(), before)


def test_obstacles_along_every_axis_match_a_walk_along_the_line():
    # the nearest obstacle before and after each cell, on all 13 axes, against walking each line cell by cell
    rng = np.random.default_rng(5)
    kinds = np.where(rng.random((6, 5, 7)) < 0.15, rng.integers(1, 256, (6, 5, 7)), 0).astype(np.uint8)
    for direction in _AXES:
        before, after = _obstacles(kinds, direction)
        first = next(a for a in range(3) if direction[a])
        step = np.asarray(direction) * np.sign(direction[first])
        for cell in np.ndindex(kinds.shape):
            for found, sign in ((before, -1), (after, 1)):
                expected, at = -1, np.asarray(cell)
                while all(0 <= c < n for c, n in zip(at, kinds.shape, strict=True)):
                    if kinds[tuple(at)] > 0:
                        expected = int(at[first]) * 256 + int(kinds[tuple(at)])
                        break
                    at = at + sign * step
                assert found[cell] == expected, (direction, cell, sign)
