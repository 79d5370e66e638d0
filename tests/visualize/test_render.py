"""Lung volume rendering: Otsu transfer points, off-screen VTK views per side, MIP fallback; on a real chest CT."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lungcad_transforms.visualize.render import otsu_transfer_points, render_lungs, vtk_offscreen_available


@pytest.fixture(scope="module")
def chest():
    """A geometric RAS chest: two aerated lungs with vessels, a solid nodule, a Grad-CAM-like blob around it."""
    rng = np.random.default_rng(0)
    shape, spacing = (80, 64, 48), (1.5, 1.5, 2.0)
    grid = np.indices(shape).astype(np.float32)
    hu = np.full(shape, 40.0, np.float32)  # soft tissue
    lungs = np.zeros(shape, bool)
    for cx in (22.0, 58.0):
        lungs |= ((grid[0] - cx) / 15) ** 2 + ((grid[1] - 32) / 22) ** 2 + ((grid[2] - 24) / 21) ** 2 <= 1
    hu[lungs] = -850.0 + rng.normal(0, 20, int(lungs.sum()))
    for _ in range(12):  # vessels: thin random segments through the lungs
        a, b = rng.uniform((5, 10, 5), (75, 54, 43)), rng.uniform((5, 10, 5), (75, 54, 43))
        t = np.linspace(0, 1, 200)[:, None]
        for p in np.round(a + t * (b - a)).astype(int):
            hu[tuple(p)] = 40.0 if lungs[tuple(p)] else hu[tuple(p)]
    nodule = ((grid[0] - 58) ** 2 + (grid[1] - 30) ** 2 + ((grid[2] - 24) * 1.33) ** 2) <= 16
    hu[nodule] = 30.0
    heat = np.exp(-((grid[0] - 58) ** 2 + (grid[1] - 30) ** 2 + ((grid[2] - 24) * 1.33) ** 2) / (2 * 5.0**2))
    return hu, lungs | nodule, heat.astype(np.float32), spacing


def _read(path: Path) -> np.ndarray:
    import matplotlib.pyplot as plt

    return plt.imread(path)[..., :3]


def test_otsu_points_separate_aerated_lung_from_solid_tissue(chest):
    hu, lungs, _, _ = chest
    low, high = otsu_transfer_points(hu, lungs)
    # the upper threshold parts aerated lung (-850 HU) from vessels and the nodule (30-40 HU)
    assert low < high and -800.0 < high < 30.0


@pytest.mark.skipif(not vtk_offscreen_available(), reason="VTK cannot open an off-screen context here")
def test_vtk_views_from_each_side_are_drawn_and_differ(tmp_path: Path, chest):
    hu, lungs, heat, spacing = chest
    right, method = render_lungs(tmp_path / "r.png", hu, lungs, spacing, heat, side="right", size=200)
    left, _ = render_lungs(tmp_path / "l.png", hu, lungs, spacing, heat, side="left", size=200)
    assert method == "vtk"
    a, b = _read(right), _read(left)
    assert a.shape == (200, 200, 3)
    assert (a.max(axis=-1) > 0.05).mean() > 0.02  # something drawn on the black background
    assert not np.allclose(a, b)  # two cameras, two pictures
    red = (a[..., 0] > 0.3) & (a[..., 0] > a[..., 1] + 0.15) & (a[..., 0] > a[..., 2] + 0.15)
    assert red.any()  # the heatmap's red surface is in view


def test_mip_fallback_without_vtk(tmp_path: Path, chest, monkeypatch):
    hu, lungs, heat, spacing = chest
    monkeypatch.setenv("LUNGCAD_RENDER", "mip")
    assert not vtk_offscreen_available()
    path, method = render_lungs(tmp_path / "mip.png", hu, lungs, spacing, heat, side="right")
    assert method == "mip"
    picture = _read(path)
    assert picture.std() > 0.02
    assert ((picture[..., 0] - picture[..., 2]) > 0.2).any()  # the heatmap's colour over the grey MIP


def test_render_refuses_an_unknown_side(tmp_path: Path, chest):
    hu, lungs, heat, spacing = chest
    with pytest.raises(ValueError, match="side"):
        render_lungs(tmp_path / "x.png", hu, lungs, spacing, heat, side="front")


@pytest.mark.slow
def test_rendering_of_a_real_chest_ct(tmp_path: Path, real_data: Path):
    """The CPTAC chest CT (512 x 512 x 99): lungs masked, rendered from the right; the picture shows them."""
    from monai.utils import convert_to_numpy

    from lungcad_transforms.data.image_reader import load_image
    from lungcad_transforms.transforms.lung.array import LungMask

    path = real_data / "chest_ct" / "cptac_c3n00247_ct"
    files = sorted(path.glob("*.nii.gz"))
    if not files:
        pytest.skip(f"no NIfTI in {path}")
    image = load_image(str(files[0]))
    hu = convert_to_numpy(image[0])
    lungs = convert_to_numpy(LungMask(dilation_mm=0.0)(image))[0] > 0
    spacing = np.sqrt((np.asarray(image.affine)[:3, :3] ** 2).sum(axis=0))
    low, high = otsu_transfer_points(hu, lungs)
    assert -950 < low < high < 200
    out, method = render_lungs(tmp_path / "real.png", hu, lungs, spacing, None, side="right", size=240)
    picture = _read(out)
    assert (picture.max(axis=-1) > 0.05).mean() > 0.02, method
