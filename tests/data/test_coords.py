"""World (LUNA16: ITK physical space, LPS, mm) <-> voxel conversion, and the LUNA16 table readers."""

from __future__ import annotations

from pathlib import Path

import itk
import nibabel as nib
import numpy as np
import pytest
import torch
from monai.transforms import LoadImage, Orientation

from lungcad_transforms.data.coords import inside_volume, voxel_to_world, world_to_voxel
from lungcad_transforms.data.tables import read_annotations, read_candidates
from lungcad_transforms.errors import InputError

LIDC_0003_SERIESUID = "1.3.6.1.4.1.14519.5.2.1.6279.6001.170706757615202213033480003264"
RAS_LABELS = (("L", "R"), ("P", "A"), ("I", "S"))


def load_ras(path: Path):
    """The project's geometry contract, spelled out with MONAI alone (independent of lungcad io)."""
    image = LoadImage(reader="ITKReader", ensure_channel_first=True, image_only=True)(str(path))
    return Orientation(axcodes="RAS", labels=RAS_LABELS)(image)


def ball_centroid_index(volume: np.ndarray, threshold: float) -> np.ndarray:
    return np.argwhere(volume > threshold).mean(axis=0)


def test_world_to_voxel_flips_x_and_y_only():
    affine = np.diag([0.7, 0.7, 2.5, 1.0])
    affine[:3, 3] = [-180.0, -200.0, -300.0]  # RAS of voxel 0
    # LPS (10, 20, -290) is RAS (-10, -20, -290)
    index = world_to_voxel([10.0, 20.0, -290.0], affine)
    assert index.shape == (1, 3)
    np.testing.assert_allclose(index[0], [(-10 + 180) / 0.7, (-20 + 200) / 0.7, (-290 + 300) / 2.5])


def test_round_trip_with_oblique_affine_and_torch_input():
    rng = np.random.default_rng(0)
    rotation, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    affine = np.eye(4)
    affine[:3, :3] = rotation @ np.diag([0.6, 0.9, 3.0])
    affine[:3, 3] = [12.0, -150.5, 800.25]
    voxels = rng.uniform(0, 100, size=(20, 3))
    world = voxel_to_world(voxels, torch.as_tensor(affine))
    np.testing.assert_allclose(world_to_voxel(torch.as_tensor(world), affine), voxels, atol=1e-9)


def test_bad_shapes_are_rejected():
    with pytest.raises(ValueError, match="shape"):
        world_to_voxel([[1.0, 2.0]], np.eye(4))
    with pytest.raises(ValueError, match="4x4"):
        voxel_to_world([1.0, 2.0, 3.0], np.eye(3))
    with pytest.raises(ValueError, match="3 entries"):
        inside_volume([1.0, 2.0, 3.0], (1, 10, 10, 10))


def test_inside_volume_uses_voxel_extent_and_never_clips():
    shape = (10, 20, 5)
    indices = np.array(
        [
            [0.0, 0.0, 0.0],
            [-0.5, -0.5, -0.5],  # lower edge of voxel 0: inside
            [-0.51, 3.0, 2.0],
            [9.49, 19.49, 4.49],
            [9.5, 3.0, 2.0],  # upper edge of the last voxel belongs to the next one: outside
            [3.0, 3.0, 5.7],
            [np.nan, 3.0, 2.0],
        ]
    )
    np.testing.assert_array_equal(
        inside_volume(indices, shape), [True, True, False, True, False, False, False]
    )
    assert inside_volume([2.0, 2.0, 2.0], shape).shape == (1,)


def test_lidc_0003_luna16_rows(lidc_0003: Path, luna16_annotations: Path):
    rows = [row for row in read_annotations(luna16_annotations) if row["seriesuid"] == LIDC_0003_SERIESUID]
    assert len(rows) == 3
    image = load_ras(lidc_0003)
    assert tuple(image.shape) == (1, 512, 512, 11)
    centres = np.array([[row["coordX"], row["coordY"], row["coordZ"]] for row in rows])
    indices = world_to_voxel(centres, image.affine)
    inside = inside_volume(indices, image.shape[1:])

    # the 21.5 mm nodule (coordZ -190.46) is in the slab; the two rows at z -172.3 and -169.6 lie beyond
    # the last slice (z -179) and must be reported outside, not clipped onto it
    big = int(np.argmax([row["diameter_mm"] for row in rows]))
    assert rows[big]["diameter_mm"] == pytest.approx(21.45, abs=0.01)
    assert rows[big]["coordZ"] == pytest.approx(-190.46, abs=0.01)
    assert inside.tolist() == [i == big for i in range(3)]
    np.testing.assert_allclose(indices[big], [143.96, 161.25, 5.42], atol=0.01)
    assert all(indices[i, 2] > 10.5 for i in range(3) if i != big)

    centre = tuple(np.floor(indices[big] + 0.5).astype(int))
    assert centre == (144, 161, 5)
    hu = image[0].numpy()
    assert hu[centre] > -400  # nodule tissue (-22 HU), not lung parenchyma (< -600)
    # the nodule spans more than 10 mm through its centre along x (0.82 mm voxels)
    solid_run = hu[centre[0] - 15 : centre[0] + 16, centre[1], centre[2]] > -400
    assert solid_run.sum() * 0.82 > 10

    # back to world: the voxel centre is within half a voxel of the LUNA16 position
    back = voxel_to_world(centre, image.affine)[0]
    assert np.all(np.abs(back - centres[big]) <= np.array([0.41, 0.41, 1.25]) + 1e-6)


def write_ball_metaimage(
    path: Path, direction_lps: np.ndarray, spacing, origin_lps, shape, centre_lps, radius_mm
):
    """A MetaImage (ITK, LPS physical space) of -800 HU with a +40 HU ball at a known LPS position."""
    grid = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), axis=-1).astype(float)
    physical = grid * np.asarray(spacing) @ direction_lps.T + np.asarray(origin_lps)
    ball = np.linalg.norm(physical - np.asarray(centre_lps), axis=-1) <= radius_mm
    volume_xyz = np.where(ball, 40, -800).astype(np.int16)
    image = itk.image_from_array(np.ascontiguousarray(volume_xyz.transpose(2, 1, 0)))  # ITK wants z, y, x
    image.SetSpacing([float(s) for s in spacing])
    image.SetOrigin([float(o) for o in origin_lps])
    image.SetDirection(itk.matrix_from_array(np.ascontiguousarray(direction_lps, dtype=np.float64)))
    itk.imwrite(image, str(path))


@pytest.mark.parametrize(
    "direction_lps",
    [
        np.diag([1.0, 1.0, 1.0]),
        np.diag([1.0, -1.0, -1.0]),  # y and z flipped (feet-first-like storage)
        np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, -1.0]]),  # x/y swapped, z flipped
    ],
    ids=["identity", "flipped_yz", "swapped_xy_flipped_z"],
)
def test_metaimage_ball_lands_on_its_voxels(tmp_path: Path, direction_lps: np.ndarray):
    spacing, origin, shape = (0.8, 0.6, 2.0), (-95.2, 130.4, -410.0), (48, 52, 30)
    # choose the ball centre inside the grid, wherever the direction puts the grid in space
    centre_index = np.array([20.3, 31.7, 12.4])
    centre_lps = direction_lps @ (centre_index * spacing) + origin
    path = tmp_path / "ball.mhd"
    write_ball_metaimage(path, direction_lps, spacing, origin, shape, centre_lps, radius_mm=6.0)

    image = load_ras(path)
    hu = image[0].numpy()
    index = world_to_voxel(centre_lps, image.affine)[0]
    assert inside_volume(index, hu.shape)[0]
    assert hu[tuple(np.floor(index + 0.5).astype(int))] == 40
    # the ball's centroid in the loaded (RAS-reoriented) array matches the converted position
    np.testing.assert_allclose(ball_centroid_index(hu, -400), index, atol=0.35)
    np.testing.assert_allclose(voxel_to_world(index, image.affine)[0], centre_lps, atol=1e-6)
    # a point 5 cm beyond the grid's first voxel is outside
    outside = world_to_voxel(direction_lps @ np.array([-50.0, 0.0, 0.0]) + origin, image.affine)
    assert not inside_volume(outside, hu.shape)[0]


def test_nifti_non_ras_orientation(tmp_path: Path):
    # an LPI-stored NIfTI with x/y axes swapped: voxel axis 0 runs posterior, 1 runs left, 2 runs inferior
    spacing = np.array([0.7, 0.9, 2.5])
    affine = np.zeros((4, 4))
    affine[:3, :3] = np.array([[0.0, -1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, -1.0]]) @ np.diag(spacing)
    affine[:3, 3] = [60.0, 40.0, -100.0]
    affine[3, 3] = 1.0
    shape = (40, 44, 24)
    centre_index = np.array([15.2, 27.6, 9.1])
    centre_ras = affine[:3, :3] @ centre_index + affine[:3, 3]
    centre_lps = centre_ras * [-1, -1, 1]
    grid = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), axis=-1).astype(float)
    ras = grid @ affine[:3, :3].T + affine[:3, 3]
    volume = np.where(np.linalg.norm(ras - centre_ras, axis=-1) <= 5.0, 60, -850).astype(np.int16)
    path = tmp_path / "lpi.nii.gz"
    nib.save(nib.Nifti1Image(volume, affine), path)

    image = load_ras(path)
    assert nib.aff2axcodes(image.affine.numpy()) == ("R", "A", "S")
    hu = image[0].numpy()
    index = world_to_voxel(centre_lps, image.affine)[0]
    assert hu[tuple(np.floor(index + 0.5).astype(int))] == 60
    np.testing.assert_allclose(ball_centroid_index(hu, -400), index, atol=0.35)
    np.testing.assert_allclose(voxel_to_world(index, image.affine)[0], centre_lps, atol=1e-5)


def test_read_annotations_real_luna16(luna16_annotations: Path):
    rows = read_annotations(luna16_annotations)
    assert len(rows) == 1186
    first = rows[0]
    assert set(first) == {"seriesuid", "coordX", "coordY", "coordZ", "diameter_mm"}
    assert first["seriesuid"] == "1.3.6.1.4.1.14519.5.2.1.6279.6001.100225287222365663678666836860"
    assert first["coordX"] == pytest.approx(-128.6994211)
    assert first["diameter_mm"] == pytest.approx(5.651470635)
    assert all(isinstance(row["coordZ"], float) for row in rows)


def test_read_candidates_class_and_probability(tmp_path: Path):
    candidates = tmp_path / "candidates.csv"
    candidates.write_text(
        "seriesuid,coordX,coordY,coordZ,class\n1.2.3,-56.08,-67.85,-311.92,0\n\n1.2.3,1,2,3,1\n"
    )
    rows = read_candidates(candidates)
    assert rows == [
        {"seriesuid": "1.2.3", "coordX": -56.08, "coordY": -67.85, "coordZ": -311.92, "class": 0},
        {"seriesuid": "1.2.3", "coordX": 1.0, "coordY": 2.0, "coordZ": 3.0, "class": 1},
    ]
    results = tmp_path / "results.csv"
    results.write_text(
        "\ufeffseriesuid,coordX,coordY,coordZ,probability,diameter_mm,note\n9.8,1.5,2.5,-3.5,0.93,7.2,lobe\n"
    )
    (row,) = read_candidates(results)
    assert row == {
        "seriesuid": "9.8",
        "coordX": 1.5,
        "coordY": 2.5,
        "coordZ": -3.5,
        "probability": pytest.approx(0.93),
        "diameter_mm": pytest.approx(7.2),
        "note": "lobe",
    }


ANNOTATION_ERRORS = [
    ("", "empty"),
    ("seriesuid,coordX,coordY,diameter_mm\n1.2,1,2,3\n", "line 1: .*lacks column.*coordZ"),
    ("seriesuid,coordX,coordY,coordZ,diameter_mm\n1.2,1,2,3,4\n1.2,1,2,3\n", "line 3: expected 5 fields"),
    ("seriesuid,coordX,coordY,coordZ,diameter_mm\n1.2,1,abc,3,4\n", "line 2: coordY is 'abc'"),
    ("seriesuid,coordX,coordY,coordZ,diameter_mm\n1.2,1,2,nan,4\n", "line 2: coordZ .*not a finite"),
    ("seriesuid,coordX,coordY,coordZ,diameter_mm\n,1,2,3,4\n", "line 2: seriesuid is empty"),
    ("seriesuid,coordX,coordY,coordZ,diameter_mm\n1.2,1,2,3,-4\n", "line 2: diameter_mm is negative"),
]
CANDIDATE_ERRORS = [
    ("seriesuid,coordX,coordY,coordZ\n1.2,1,2,3\n", "neither a 'class' nor a 'probability'"),
    ("seriesuid,coordX,coordY,coordZ,class\n1.2,1,2,3,0.5\n", "line 2: class is '0.5', not an integer"),
    ("seriesuid,coordX,coordY,coordZ,probability\n1.2,1,2,3,high\n", "line 2: probability is 'high'"),
]


@pytest.mark.parametrize(
    "reader, name, text, message",
    [(read_annotations, "annotations.csv", *case) for case in ANNOTATION_ERRORS]
    + [(read_candidates, "candidates.csv", *case) for case in CANDIDATE_ERRORS],
)
def test_readers_refuse_malformed_tables(tmp_path: Path, reader, name: str, text: str, message: str):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(InputError, match=message) as info:
        reader(path)
    assert info.value.path == str(path)


def test_readers_name_a_missing_file(tmp_path: Path):
    with pytest.raises(InputError, match="does not exist") as info:
        read_annotations(tmp_path / "nope.csv")
    assert "nope.csv" in str(info.value)
    with pytest.raises(InputError, match="does not exist"):
        read_candidates(tmp_path / "nope.csv")


def test_ct_phantom_nodules_via_metaimage(tmp_path: Path):
    """The shared synthetic CT and MetaImage writer: each nodule's LPS centre lands on its own label."""
    phantoms = pytest.importorskip("lungcad_transforms.apps.phantoms")
    writers = pytest.importorskip("lungcad_transforms.data")
    phantom = phantoms.make_ct_phantom(shape=(64, 64, 32), seed=3, nodule_kinds=("solid", "solid", "solid"))
    paths = {
        name: writers.write_metaimage(volume, phantom.spacing, phantom.origin_lps, tmp_path / f"{name}.mhd")
        for name, volume in (("ct", phantom.hu), ("labels", phantom.nodule_labels))
    }
    ct, labels = load_ras(paths["ct"]), load_ras(paths["labels"])
    np.testing.assert_allclose(ct.affine.numpy(), labels.affine.numpy())
    centres = np.array([nodule.center_lps for nodule in phantom.nodules])
    indices = world_to_voxel(centres, ct.affine)
    assert inside_volume(indices, ct.shape[1:]).all()
    for number, index in enumerate(np.floor(indices + 0.5).astype(int), start=1):
        assert int(labels[0][tuple(index)]) == number
        assert float(ct[0][tuple(index)]) > -400  # nodule tissue, not aerated lung
    np.testing.assert_allclose(voxel_to_world(indices, ct.affine), centres, atol=1e-6)
