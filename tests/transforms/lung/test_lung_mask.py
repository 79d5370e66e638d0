"""LungMask (the array transform) and dilate_ellipsoid: synthetic chests, phantoms, bad input, real scans."""

from __future__ import annotations

import warnings

import cc3d
import numpy as np
import pytest
import torch
from lung_cases import as_bool, dice, load_ras, synthetic_chest
from monai.data import MetaTensor
from scipy import ndimage

from lungcad_transforms.apps.phantoms.ct import make_ct_phantom
from lungcad_transforms.apps.phantoms.tissues import TISSUES
from lungcad_transforms.data.coords import inside_volume, world_to_voxel
from lungcad_transforms.data.tables import read_annotations
from lungcad_transforms.errors import InputError
from lungcad_transforms.transforms.lung.array import LungMask, NoLungWarning
from lungcad_transforms.transforms.lung.functional import dilate_ellipsoid

LIDC_0003_SERIES = "1.3.6.1.4.1.14519.5.2.1.6279.6001.170706757615202213033480003264"


@pytest.fixture(scope="module")
def phantom():
    # several nodules, one of them juxtapleural (its base bulges into the chest wall)
    return make_ct_phantom((96, 96, 64), seed=4, nodule_kinds=("juxtapleural", "solid", "part_solid"))


# ------------------------------------------------------------------------------------------ synthetic chest --
def test_both_separate_lungs_kept_with_vessels_filled():
    hu, lungs = synthetic_chest()
    mask = LungMask(dilation_mm=0)(hu)
    assert mask.dtype == np.uint8 and mask.shape == hu.shape
    assert dice(mask, lungs) > 0.99
    assert cc3d.connected_components(mask.astype(bool), connectivity=26, return_N=True)[1] == 2
    left, right = lungs.copy(), lungs.copy()
    left[48:], right[:48] = False, False
    assert as_bool(mask)[left].mean() > 0.99 and as_bool(mask)[right].mean() > 0.99


def test_outside_air_and_table_excluded_trachea_kept():
    hu, lungs = synthetic_chest(trachea=True)
    mask = as_bool(LungMask(dilation_mm=0)(hu))
    assert np.count_nonzero(mask & ~lungs) == 0
    assert not mask[:, 66:].any()  # nothing at or behind the table
    assert not mask[:, :6].any()  # nothing in the air in front of the body
    assert dice(mask, lungs) > 0.99
    assert mask[48, 26, -1], "the trachea, connected to the lungs by the bronchi, is part of the mask"


def test_bowel_gas_below_lungs_and_small_pockets_dropped():
    hu, lungs = synthetic_chest(shape=(96, 80, 24), lung_slices=slice(9, None))
    x, y = np.arange(96)[:, None], np.arange(80)[None, :]
    gas = np.zeros(hu.shape, bool)
    # a large gas pocket (about 30 % of a lung's volume, 11 % of the body section) below the lungs
    gas[:, :, 0:8] = (((x - 60) / 14.0) ** 2 + ((y - 40) / 10.0) ** 2 <= 1)[:, :, None]
    # and a small one at lung level (air in the oesophagus, between the lungs)
    gas[46:50, 48:52, 12:16] = True
    hu[gas] = -1000
    mask = as_bool(LungMask(dilation_mm=0)(hu))
    assert not (mask & gas).any()
    assert dice(mask, lungs) > 0.99


def test_lungs_touching_first_and_last_slice_are_kept():
    hu, lungs = synthetic_chest(shape=(96, 80, 6))
    mask = as_bool(LungMask(dilation_mm=0)(hu))
    assert dice(mask, lungs) > 0.99
    assert mask[:, :, 0].sum() > 0.99 * lungs[:, :, 0].sum()
    assert mask[:, :, -1].sum() > 0.99 * lungs[:, :, -1].sum()


def test_single_slice():
    hu, lungs = synthetic_chest(shape=(96, 80, 1))
    mask = as_bool(LungMask()(hu))  # default dilation too
    assert mask.shape == (96, 80, 1)
    assert mask[lungs].all()
    assert cc3d.connected_components(as_bool(LungMask(dilation_mm=0)(hu))[:, :, 0], return_N=True)[1] == 2


@pytest.mark.parametrize("padding", [-2048, -3024])
def test_fov_padding_is_outside(padding):
    hu, lungs = synthetic_chest()
    x, y = np.arange(96)[:, None], np.arange(80)[None, :]
    # a reconstruction circle narrower than the body: the air in front of the chest touches only the padding
    hu[((x - 48) ** 2 + (y - 40) ** 2 > 39**2)] = padding
    assert hu[48, 5, 0] < -900 and hu[48, 0, 0] == padding
    mask = as_bool(LungMask(dilation_mm=0)(hu))
    assert dice(mask, lungs) > 0.99


def test_padding_inside_the_image_is_outside_even_away_from_the_border():
    hu, lungs = synthetic_chest()
    # e.g. a region blanked with the padding value by software (table removal), in an air pocket enclosed
    # by tissue behind the heart; the size rules are relaxed so that only the padding rule can drop it
    hu[43:53, 44:62] = -1000
    hu[46:50, 50:56] = -3024
    mask = as_bool(LungMask(dilation_mm=0, keep_fraction=0.1, min_area_fraction=0.0)(hu))
    assert not mask[43:53, 44:62].any()
    assert dice(mask, lungs) > 0.99


def test_mediastinum_enclosed_by_lungs_is_not_filled():
    hu, lungs = synthetic_chest()
    # the lungs meet in front of and behind the mediastinum (thin junction lines lost to partial volume):
    # in every slice the mediastinum becomes a region enclosed by lung
    hu[30:67, 18:21] = -850
    hu[30:67, 52:55] = -850
    spacing = (4.0, 4.0, 5.0)  # a 38 cm wide chest: the mediastinum is ~ 120 cm^2, vessels ~ 2 cm^2
    mask = as_bool(LungMask(dilation_mm=0, spacing=spacing)(hu))
    assert not mask[48, 36].any() and mask[lungs].all()
    unlimited = as_bool(LungMask(dilation_mm=0, spacing=spacing, max_hole_mm2=None)(hu))
    assert unlimited[48, 36].all()


def test_no_lung_gives_empty_mask_and_warning():
    hu, _ = synthetic_chest()
    hu[hu < -350] = -1000
    hu[16:80, 10:62] = np.maximum(hu[16:80, 10:62], 20)  # fill the chest with tissue: no lungs
    with pytest.warns(NoLungWarning, match="no lungs"):
        mask = LungMask()(hu)
    assert mask.shape == hu.shape and not mask.any()


# --------------------------------------------------------------------------------------------- dilation --
@pytest.mark.parametrize(
    "spacing, radius",
    [((1.0, 1.0, 1.0), 3.0), ((2.5, 0.7, 0.8), 5.0), ((0.9, 1.7, 0.6), 6.2), ((3.0, 1.0, 1.0), 2.9)],
)
def test_dilate_ellipsoid_equals_scipy_with_the_ellipsoid(spacing, radius):
    rng = np.random.default_rng(1)
    mask = rng.random((24, 30, 41)) < 0.003
    mask[8:12, 12:18, 5:11] = True
    semi = [int(np.floor(radius / s + 1e-9)) for s in spacing]
    grid = np.ogrid[tuple(slice(-a, a + 1) for a in semi)]
    ellipsoid = sum((g * s) ** 2 for g, s in zip(grid, spacing, strict=True)) <= radius**2 + 1e-9
    expected = ndimage.binary_dilation(mask, structure=ellipsoid)
    np.testing.assert_array_equal(dilate_ellipsoid(mask, spacing, radius), expected)


def test_dilation_grows_by_the_radius_in_mm_with_anisotropic_spacing():
    spacing = (0.7, 0.7, 2.5)
    hu, lungs = synthetic_chest(shape=(96, 80, 24), lung_slices=slice(8, 16))
    affine = torch.diag(torch.tensor([*spacing, 1.0], dtype=torch.float64))
    image = MetaTensor(torch.from_numpy(hu)[None], affine=affine)
    base = as_bool(LungMask(dilation_mm=0)(image))[0]
    grown = as_bool(LungMask(dilation_mm=5.0)(image))[0]
    assert (grown | base).sum() == grown.sum()
    row = 36  # the lungs' widest row
    base_x, grown_x = np.flatnonzero(base[:, row, 12]), np.flatnonzero(grown[:, row, 12])
    assert base_x[0] - grown_x[0] == 7 and grown_x[-1] - base_x[-1] == 7  # 5 mm / 0.7 mm
    base_z, grown_z = np.flatnonzero(base[29, row]), np.flatnonzero(grown[29, row])
    assert base_z[0] - grown_z[0] == 2 and grown_z[-1] - base_z[-1] == 2  # 5 mm / 2.5 mm
    # the same volume given as an array with the spacing as a parameter gives the same mask
    np.testing.assert_array_equal(as_bool(LungMask(dilation_mm=5.0, spacing=spacing)(hu)), grown)


# --------------------------------------------------------------------------------------------- phantoms --
def test_phantom_dice_and_juxtapleural_nodule_inside_after_dilation(phantom):
    mask0 = as_bool(LungMask(dilation_mm=0, spacing=phantom.spacing)(phantom.hu))
    assert dice(mask0, phantom.lungs) > 0.97
    # the mask adds the trachea and main bronchi, which the phantom's ground truth leaves out
    airway_outside_gt = (phantom.tissues == TISSUES["airway"]) & ~phantom.lungs
    assert mask0[airway_outside_gt].mean() > 0.8
    juxta = [i + 1 for i, n in enumerate(phantom.nodules) if n.kind == "juxtapleural"]
    assert juxta
    for label in range(1, len(phantom.nodules) + 1):
        nodule = phantom.nodule_labels == label
        if label not in juxta:
            assert mask0[nodule].all(), "a nodule inside the lung is filled in without dilation"
    mask10 = as_bool(LungMask(dilation_mm=10.0, spacing=phantom.spacing)(phantom.hu))
    assert mask10[phantom.nodule_labels > 0].all()
    assert not mask0[np.isin(phantom.nodule_labels, juxta)].all(), (
        "without dilation the nodule base is cut off"
    )


def test_phantom_table_outside_air_and_fov_padding(phantom):
    ct = make_ct_phantom((96, 96, 48), seed=1, fov_circle=True)
    assert ct.hu.min() == -2048
    for padding in (-2048, -3024):
        hu = np.where(ct.hu == -2048, padding, ct.hu).astype(np.int16)
        mask = as_bool(LungMask(dilation_mm=0, spacing=ct.spacing)(hu))
        assert dice(mask, ct.lungs) > 0.97
        for tissue in ("air", "table", "table_foam"):
            assert not mask[ct.tissues == TISSUES[tissue]].any(), tissue


def test_phantom_single_lung():
    ct = make_ct_phantom((96, 96, 48), seed=2, lungs="left")
    mask = as_bool(LungMask(dilation_mm=0, spacing=ct.spacing)(ct.hu))
    assert dice(mask, ct.lungs) > 0.97


def test_phantom_abdomen_without_lungs_gives_empty_mask_and_warning():
    ct = make_ct_phantom((96, 96, 32), seed=3, lungs="none")
    assert (ct.tissues == TISSUES["gas"]).any(), "the abdomen has bowel gas"
    with pytest.warns(NoLungWarning):
        mask = LungMask(spacing=ct.spacing)(ct.hu)
    assert not mask.any()


# -------------------------------------------------------------------------------------- bad input, meta --
def test_metadata_preserved_and_input_untouched():
    hu, lungs = synthetic_chest()
    affine = torch.tensor(
        [[-0.8, 0, 0, 120.0], [0, -0.8, 0, 95.0], [0, 0, 2.0, -210.0], [0, 0, 0, 1]], dtype=torch.float64
    )
    image = MetaTensor(
        torch.from_numpy(hu.astype(np.float32))[None], affine=affine, meta={"filename_or_obj": "ct.nii"}
    )
    before = image.clone()
    mask = LungMask(dtype=bool)(image)
    assert isinstance(mask, MetaTensor) and mask.dtype == torch.bool and mask.shape == image.shape
    torch.testing.assert_close(mask.affine, image.affine)
    assert mask.meta["filename_or_obj"] == "ct.nii"
    assert torch.equal(image, before)
    tensor_mask = LungMask(dilation_mm=0)(torch.from_numpy(hu))
    assert type(tensor_mask) is torch.Tensor and tensor_mask.dtype == torch.uint8
    assert dice(tensor_mask.numpy(), lungs) > 0.99


def test_slice_axis_follows_the_affine():
    hu, _ = synthetic_chest()
    spacing = (0.8, 0.8, 2.0)
    canonical = as_bool(LungMask(spacing=spacing)(hu))
    # the same scan stored slice-first: index 0 runs along z, 1 along x, 2 along y
    affine = torch.tensor([[0, 0.8, 0, 0], [0, 0, 0.8, 0], [2.0, 0, 0, 0], [0, 0, 0, 1]], dtype=torch.float64)
    image = MetaTensor(torch.from_numpy(np.ascontiguousarray(hu.transpose(2, 0, 1)))[None], affine=affine)
    permuted = as_bool(LungMask()(image))[0]
    np.testing.assert_array_equal(permuted, canonical.transpose(2, 0, 1))


def test_not_ct_raises_input_error_naming_the_file():
    hu, _ = synthetic_chest()
    mr = MetaTensor(torch.from_numpy(hu)[None], meta={"filename_or_obj": "/data/t1.nii.gz", "modality": "MR"})
    with pytest.raises(InputError, match="MR") as info:
        LungMask()(mr)
    assert info.value.path == "/data/t1.nii.gz"
    suv = MetaTensor(torch.rand(1, 32, 32, 8) * 12, meta={"filename_or_obj": "/data/pet_suv.nii.gz"})
    with pytest.raises(InputError, match="Hounsfield") as info:
        LungMask()(suv)
    assert info.value.path == "/data/pet_suv.nii.gz"


def test_nan_and_wrong_dimensionality_raise_input_error():
    hu, _ = synthetic_chest()
    with_nan = hu.astype(np.float32)
    with_nan[10, 10, 3] = np.nan
    with pytest.raises(InputError, match="NaN"):
        LungMask()(with_nan)
    with pytest.raises(InputError, match="2-D"):
        LungMask()(hu[:, :, 0])
    with pytest.raises(InputError, match="channels"):
        LungMask()(np.stack([hu, hu]))
    with pytest.raises(InputError, match="2-D image"):
        LungMask()(hu[None, :, :, 0])  # (1, X, Y): a slice with a channel dim, not a volume
    slice_2d = MetaTensor(
        torch.from_numpy(hu[:, :, 0])[None], meta={"spatial_shape": (96, 80), "filename_or_obj": "x.png"}
    )
    with pytest.raises(InputError, match="2-D image"):
        LungMask()(slice_2d)


# ------------------------------------------------------------------------------------------------ real --
def lung_volumes_ml(mask: np.ndarray, spacing) -> list[float]:
    labels, n = cc3d.connected_components(mask, connectivity=6, return_N=True)
    counts = np.bincount(labels.ravel())[1:]
    return sorted((counts * float(np.prod(spacing)) / 1000.0).tolist(), reverse=True)


@pytest.mark.parametrize("case", ["lidc_0002", "lidc_0003"])
def test_real_lidc_slabs_two_lungs(case, request):
    image = load_ras(request.getfixturevalue(case))
    mask = LungMask(dilation_mm=0)(image)
    assert isinstance(mask, MetaTensor) and mask.shape == image.shape
    torch.testing.assert_close(mask.affine, image.affine)
    lungs = as_bool(mask)[0]
    spacing = image.pixdim.numpy()
    volumes = lung_volumes_ml(lungs, spacing)
    assert len(volumes) >= 2 and volumes[1] > 50.0 and (len(volumes) == 2 or volumes[2] < 0.02 * volumes[1])
    # lung area per slice of a mid-chest slab: two lungs, 100..400 cm^2 together
    area_cm2 = sum(volumes) / (lungs.shape[2] * spacing[2] / 10.0)
    assert 100.0 < area_cm2 < 400.0
    assert lungs[:, :, 0].sum() > 0 and lungs[:, :, -1].sum() > 0, "lungs touching the slab's ends stay"


def test_real_lidc_0003_luna16_nodule_inside_dilated_mask(lidc_0003, luna16_annotations):
    image = load_ras(lidc_0003)
    rows = [r for r in read_annotations(luna16_annotations) if r["seriesuid"] == LIDC_0003_SERIES]
    assert len(rows) == 3
    centres = world_to_voxel([[r["coordX"], r["coordY"], r["coordZ"]] for r in rows], image.affine)
    in_slab = inside_volume(centres, image.shape[1:])
    assert in_slab.sum() == 1  # the 21 mm nodule at z = -190.46; the other two lie above the slab
    nodule = rows[int(np.flatnonzero(in_slab)[0])]
    assert nodule["coordZ"] == pytest.approx(-190.46, abs=0.01)
    centre = centres[in_slab][0]
    spacing = image.pixdim.numpy()
    grid = np.meshgrid(*[np.arange(n) for n in image.shape[1:]], indexing="ij")
    sphere = (
        sum(((g - c) * s) ** 2 for g, c, s in zip(grid, centre, spacing, strict=True))
        <= (nodule["diameter_mm"] / 2) ** 2
    )
    mask = as_bool(LungMask()(image))[0]
    assert sphere.sum() > 1000 and mask[sphere].all()


def test_real_lungmask_single_slices_two_lungs(real_data):
    paths = sorted((real_data / "small/lungmask_tests").glob("*.dcm"))
    if not paths:
        pytest.skip("lungmask_tests slices missing from the real test data")
    for path in paths:
        image = load_ras(path)
        assert image.shape == (1, 512, 512, 1)
        with warnings.catch_warnings():
            warnings.simplefilter("error", NoLungWarning)
            lungs = as_bool(LungMask(dilation_mm=0)(image))[0, :, :, 0]
            dilated = as_bool(LungMask()(image))[0, :, :, 0]
        labels, n = cc3d.connected_components(lungs, connectivity=8, return_N=True)
        areas_cm2 = np.bincount(labels.ravel())[1:] * float(image.pixdim[0] * image.pixdim[1]) / 100.0
        assert n == 2 and areas_cm2.min() > 30.0, (path.name, areas_cm2)
        assert dilated[lungs].all() and dilated.sum() > lungs.sum()


def test_real_abdomen_ct_lung_bases_kept_bowel_gas_dropped(real_data):
    path = real_data / "small/totalsegmentator/example_ct_sm.nii.gz"
    if not path.exists():
        pytest.skip("TotalSegmentator example CT missing from the real test data")
    image = load_ras(path)  # upper abdomen, 3 mm: colon and stomach gas, the lung bases in the top slices
    hu = image.numpy()[0]
    lungs = as_bool(LungMask(dilation_mm=0)(image))[0]
    body = np.stack([ndimage.binary_fill_holes(hu[:, :, k] > -350) for k in range(hu.shape[2])], axis=-1)
    gas = body & (hu <= -900)
    assert gas[:, :, :15].sum() > 1000, "the lower half holds bowel gas"
    assert not lungs[:, :, :15].any()
    labels, n = cc3d.connected_components(lungs[:, :, -1], connectivity=8, return_N=True)
    areas_cm2 = np.bincount(labels.ravel())[1:] * float(image.pixdim[0] * image.pixdim[1]) / 100.0
    assert n == 2 and areas_cm2.min() > 20.0, "both lung bases in the top slice"
    assert hu[lungs].mean() < -600


def test_real_cropped_chest_lungs_cut_by_the_field_of_view(real_data):
    path = real_data / "small/totalsegmentator/pulmonary_report_ct_cropped.nii.gz"
    if not path.exists():
        pytest.skip("TotalSegmentator cropped chest CT missing from the real test data")
    image = load_ras(path)  # a crop around the heart: the lungs run into the image border, no air outside
    hu = image.numpy()[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error", NoLungWarning)
        lungs = as_bool(LungMask(dilation_mm=0)(image))[0]
    voxel_ml = float(np.prod(image.pixdim.numpy())) / 1000.0
    half = hu.shape[0] // 2
    assert lungs[:half].sum() * voxel_ml > 400 and lungs[half:].sum() * voxel_ml > 400
    assert hu[lungs].mean() < -600
    with pytest.warns(NoLungWarning):  # the classic rule (all air at the border is outside) loses them
        classic = LungMask(dilation_mm=0, outside_air_max_hu=None)(image)
    assert not classic.any()


def test_real_chest_ct_air_outside_the_body_stays_out(real_data):
    # CPTAC C3N-00247: the air between the body and a shield in front of the chest is about -900 HU, dense
    # enough to pass for lung cut by the field of view; it spans the whole field of view, which no lung does
    path = real_data / "chest_ct/cptac_c3n00247_ct/C3N-00247_chest_ct_B70f.nii.gz"
    if not path.exists():
        pytest.skip("CPTAC chest CT missing from the real test data")
    image = load_ras(path)
    lungs = as_bool(LungMask(dilation_mm=0)(image))[0]
    voxel_ml = float(np.prod(image.pixdim.numpy())) / 1000.0
    labels, n = cc3d.connected_components(lungs, connectivity=26, return_N=True)
    volumes_ml = np.bincount(labels.ravel())[1:] * voxel_ml
    assert 3500 < lungs.sum() * voxel_ml < 6000, volumes_ml  # 4.6 l of lungs; 8.8 l with the outside air in
    assert not (lungs[0].any() or lungs[-1].any() or lungs[:, 0].any() or lungs[:, -1].any())
    half = lungs.shape[0] // 2
    assert lungs[:half].sum() * voxel_ml > 1000 and lungs[half:].sum() * voxel_ml > 1000  # both lungs
