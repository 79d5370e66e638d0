"""Synthetic CT / PET / MR phantoms: determinism, geometry, anatomy and nodule ground truth."""

from __future__ import annotations

import cc3d
import numpy as np
import pytest
from pydicom.uid import UID
from scipy import ndimage

from lungcad_transforms.apps.phantoms.ct import make_ct_phantom
from lungcad_transforms.apps.phantoms.pet_mr import make_mr_phantom, make_pet_phantom
from lungcad_transforms.apps.phantoms.results import NODULE_KINDS, CTPhantom
from lungcad_transforms.apps.phantoms.tissues import TISSUES

BODY_WALL = [TISSUES[k] for k in ("skin", "fat", "muscle", "cortical_bone", "marrow", "cartilage")]


@pytest.fixture(scope="module")
def ct() -> CTPhantom:
    # anisotropic in-plane spacing and a non-cubic grid, so that axis mix-ups show
    return make_ct_phantom(
        (96, 88, 64),
        spacing=(0.8, 0.75, 1.25),
        seed=3,
        nodule_kinds=NODULE_KINDS,
        nodule_diameter_mm=(7.0, 12.0),
    )


def centre_index(phantom, nodule) -> np.ndarray:
    return (np.asarray(nodule.center_lps) - np.asarray(phantom.origin_lps)) / np.asarray(phantom.spacing)


def test_fields_and_geometry(ct: CTPhantom):
    assert ct.hu.dtype == np.int16 and ct.hu.shape == (96, 88, 64)
    assert ct.lungs.dtype == bool and ct.lungs.shape == ct.hu.shape
    assert ct.nodule_labels.dtype == np.uint8 and ct.tissues.shape == ct.hu.shape
    assert ct.spacing == (0.8, 0.75, 1.25)
    affine = ct.affine_lps()
    np.testing.assert_allclose(affine[:3, :3], np.diag(ct.spacing))
    np.testing.assert_allclose(affine[:3, 3], ct.origin_lps)
    assert UID(ct.seriesuid).is_valid
    assert [n.kind for n in ct.nodules] == list(NODULE_KINDS)
    assert sorted(np.unique(ct.nodule_labels)) == list(range(len(ct.nodules) + 1))


def test_same_seed_same_phantom_other_seed_other_phantom():
    a = make_ct_phantom((48, 48, 24), seed=5, n_nodules=2)
    b = make_ct_phantom((48, 48, 24), seed=5, n_nodules=2)
    c = make_ct_phantom((48, 48, 24), seed=6, n_nodules=2)
    for name in ("hu", "lungs", "nodule_labels", "tissues"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert a.nodules == b.nodules and a.seriesuid == b.seriesuid and a.spacing == b.spacing
    assert a.origin_lps == b.origin_lps
    assert not np.array_equal(a.hu, c.hu[: a.hu.shape[0]]) and a.seriesuid != c.seriesuid


def test_default_spacing_is_drawn_like_a_scanner():
    spacings = [make_ct_phantom((32, 32, 12), seed=s, n_nodules=0).spacing for s in range(6)]
    for sx, sy, sz in spacings:
        assert 0.6 <= sx <= 0.9 and sx == sy
        assert sz in (0.625, 1.0, 1.25, 1.5, 2.0, 2.5)
    assert len(set(spacings)) > 1


def test_nodule_centres_sit_on_their_nodule_with_the_hu_of_their_kind(ct: CTPhantom):
    for number, nodule in enumerate(ct.nodules, start=1):
        index = centre_index(ct, nodule)
        np.testing.assert_allclose(index, np.round(index), atol=1e-6)  # on a voxel centre
        i, j, k = np.round(index).astype(int)
        assert ct.nodule_labels[i, j, k] == number
        assert ct.lungs[i, j, k]
        centre_hu = float(ct.hu[i - 1 : i + 2, j - 1 : j + 2, k].mean())
        if nodule.kind == "ground_glass":
            assert -750 < centre_hu < -300, (nodule, centre_hu)
        else:  # solid, juxta-*, and the solid core of a part-solid nodule
            assert centre_hu > -200, (nodule, centre_hu)
        if nodule.kind == "part_solid":
            # the rim is ground glass: look at the labelled voxels far from the centre
            grid = np.stack(np.meshgrid(*[np.arange(n) for n in ct.hu.shape], indexing="ij"), -1)
            mask = ct.nodule_labels == number
            dist_mm = np.linalg.norm((grid[mask] - index) * np.asarray(ct.spacing), axis=1)
            rim = ct.hu[mask][dist_mm > 0.8 * nodule.diameter_mm / 2]
            assert -750 < np.median(rim) < -250


def test_nodule_label_volumes_match_their_diameter(ct: CTPhantom):
    voxel_mm3 = float(np.prod(ct.spacing))
    for number, nodule in enumerate(ct.nodules, start=1):
        expected = np.pi / 6 * nodule.diameter_mm**3 / voxel_mm3
        assert expected > 100
        count = int((ct.nodule_labels == number).sum())
        assert abs(count / expected - 1) < 0.2, (nodule, count, expected)
        assert 3.0 <= nodule.diameter_mm <= 30.0


def test_nodule_kinds_touch_what_they_should(ct: CTPhantom):
    wall = np.isin(ct.tissues, BODY_WALL)
    vessel = ct.tissues == TISSUES["vessel"]
    for number, nodule in enumerate(ct.nodules, start=1):
        grown = ndimage.binary_dilation(ct.nodule_labels == number, iterations=2)
        if nodule.kind == "juxtapleural":
            assert (grown & wall).any(), "a juxtapleural nodule touches the chest wall"
        else:
            touching = ndimage.binary_dilation(ct.nodule_labels == number) & ~ct.lungs
            assert not touching.any(), f"a {nodule.kind} nodule lies inside the lung, off the pleura"
        if nodule.kind == "juxtavascular":
            assert (grown & vessel).sum() >= 2, "a juxtavascular nodule touches a vessel"


def test_lungs_are_two_aerated_lungs(ct: CTPhantom):
    parenchyma = ct.lungs & (ct.nodule_labels == 0)
    assert -900 < np.median(ct.hu[parenchyma]) < -750
    assert (ct.hu[parenchyma] < -500).mean() > 0.85
    labels, n = cc3d.connected_components(ct.lungs, connectivity=26, return_N=True)
    sizes = np.bincount(labels.ravel())[1:]
    assert n == 2 and 0.5 < sizes[0] / sizes[1] < 2.0
    # the right lung lies on the patient's right: smaller x in LPS, smaller i
    centres_i = [np.nonzero(labels == lab)[0].mean() for lab in (1, 2)]
    assert abs(centres_i[0] - centres_i[1]) > 0.3 * ct.hu.shape[0]
    # the lungs mask holds no trachea, heart or chest wall
    assert not (ct.lungs & np.isin(ct.tissues, BODY_WALL + [TISSUES["blood"], TISSUES["myocardium"]])).any()


def test_body_table_bones_and_noise(ct: CTPhantom):
    tissues, hu = ct.tissues, ct.hu
    body = tissues == TISSUES["skin"]
    body |= np.isin(tissues, [TISSUES[k] for k in TISSUES if k not in ("air", "table", "table_foam")])
    table = np.isin(tissues, [TISSUES["table"], TISSUES["table_foam"]])
    assert table.any() and body.any()
    # the table lies below (posterior to) the body, with air between them, in every column
    k = hu.shape[2] // 2
    for i in np.nonzero(body[:, :, k].any(axis=1))[0]:
        body_bottom = np.nonzero(body[i, :, k])[0].max()
        table_top = np.nonzero(table[i, :, k])[0].min()
        assert table_top > body_bottom + 1
        assert hu[i, body_bottom + 1 : table_top, k].min() < -900
    assert np.median(hu[tissues == TISSUES["fat"]]) == pytest.approx(-100, abs=40)
    assert np.median(hu[tissues == TISSUES["muscle"]]) == pytest.approx(45, abs=35)
    assert np.median(hu[tissues == TISSUES["cortical_bone"]]) > 300
    assert (tissues == TISSUES["marrow"]).sum() > 50  # ribs and vertebrae
    assert (tissues == TISSUES["airway"]).any() and (tissues == TISSUES["vessel"]).any()
    # quantum noise of a real scanner: 15..25 HU, measured in the homogeneous inside of the liver/muscle
    inner = ndimage.binary_erosion(tissues == TISSUES["muscle"], iterations=2)
    assert 8 < hu[inner].std() < 40


def test_abdomen_slab_without_lungs():
    slab = make_ct_phantom((64, 64, 32), seed=2, lungs=False)
    assert not slab.lungs.any() and slab.nodules == [] and not slab.nodule_labels.any()
    gas = slab.tissues == TISSUES["gas"]
    assert (slab.hu[gas] < -900).sum() > 20  # bowel gas, black on CT
    assert (slab.tissues == TISSUES["liver"]).any() and (slab.tissues == TISSUES["kidney"]).any()
    with pytest.raises(ValueError, match="lungs"):
        make_ct_phantom((64, 64, 32), seed=2, lungs=False, n_nodules=1)


def test_single_lung():
    left = make_ct_phantom((64, 64, 32), spacing=(0.7, 0.7, 1.25), seed=4, lungs="left", n_nodules=1)
    _, n = cc3d.connected_components(left.lungs, return_N=True)
    assert n == 1
    # the left lung is at larger x (LPS): the upper half of the i axis
    assert np.nonzero(left.lungs)[0].min() > 0.4 * left.hu.shape[0]
    assert (left.tissues == TISSUES["fluid"]).sum() > 100  # the empty right pleural space


def test_field_of_view_circle():
    ph = make_ct_phantom((64, 64, 16), seed=1, n_nodules=0, fov_circle=True)
    assert (ph.hu[0, 0] == -2048).all() and (ph.hu[-1, -1] == -2048).all()
    assert (ph.hu[32, 32] > -2048).all()
    body = ~np.isin(ph.tissues, [TISSUES["air"], TISSUES["table"], TISSUES["table_foam"]])
    assert (ph.hu[body] > -2048).all()
    plain = make_ct_phantom((64, 64, 16), seed=1, n_nodules=0)
    assert plain.hu.min() >= -1024


def test_small_volume_still_a_chest_with_fitting_nodules():
    ph = make_ct_phantom((32, 32, 16), seed=0, n_nodules=2)
    assert ph.lungs.sum() > 200
    lung_width_mm = np.ptp(np.nonzero(ph.lungs)[0]) * ph.spacing[0]
    for nodule in ph.nodules:
        assert nodule.diameter_mm < 0.5 * lung_width_mm


def test_bad_arguments():
    with pytest.raises(ValueError, match="kinds"):
        make_ct_phantom((48, 48, 24), nodule_kinds=("calcified",))
    with pytest.raises(ValueError, match="3-D"):
        make_ct_phantom((48, 48))
    with pytest.raises(ValueError, match="spacing"):
        make_ct_phantom((48, 48, 24), spacing=(0.7, 0.0, 1.0))


def test_pet_phantom_is_co_registered_with_its_ct(ct: CTPhantom):
    pet = make_pet_phantom((48, 44, 32), reference=ct)
    assert pet.suv.dtype == np.float32 and pet.suv.min() >= 0
    # same world box, same lesions
    np.testing.assert_allclose(
        np.subtract(pet.origin_lps, np.divide(pet.spacing, 2)),
        np.subtract(ct.origin_lps, np.divide(ct.spacing, 2)),
    )
    assert [lesion.center_lps for lesion in pet.lesions] == [n.center_lps for n in ct.nodules]
    lung = (pet.tissues == TISSUES["lung"]) & (pet.lesion_labels == 0)
    assert 0.2 < np.median(pet.suv[lung]) < 0.8
    muscle = pet.tissues == TISSUES["muscle"]
    assert 0.4 < np.median(pet.suv[muscle]) < 1.1
    for number, (lesion, peak) in enumerate(zip(pet.lesions, pet.lesion_suv, strict=True), start=1):
        assert 3.0 <= peak <= 15.0
        inside = pet.suv[pet.lesion_labels == number]
        assert inside.max() > 2.5 * np.median(pet.suv[lung]), lesion


def test_pet_abdomen_has_a_hot_bladder_and_mr_has_t1_contrast():
    pet = make_pet_phantom((48, 48, 32), seed=1, lungs=False)
    assert pet.lesions == []
    assert pet.suv[pet.tissues == TISSUES["bladder"]].max() > 8
    mr = make_mr_phantom((64, 64, 24), seed=2, n_lesions=1)
    fat = np.median(mr.intensity[mr.tissues == TISSUES["fat"]])
    muscle = np.median(mr.intensity[mr.tissues == TISSUES["muscle"]])
    lung = np.median(mr.intensity[mr.tissues == TISSUES["lung"]])
    assert fat > 2 * muscle and lung < 0.3 * muscle
    assert mr.lesion_labels.max() == 1
    same = make_mr_phantom((64, 64, 24), seed=2, n_lesions=1)
    np.testing.assert_array_equal(mr.intensity, same.intensity)
