"""GradCAMSaver writes aligned NIfTI heatmaps, montages and a table."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
from tiny_nets import BlobNet

import lungcad_transforms.data.image_reader as lungcad_io
from lungcad_transforms.apps.detection.candidate_dataset import MultiScalePatchDataset
from lungcad_transforms.data.coords import voxel_to_world
from lungcad_transforms.data.image_writer import write_nifti
from lungcad_transforms.handlers.gradcam_saver import GradCAMSaver

pytestmark = pytest.mark.usefixtures("single_torch_thread")


def test_gradcam_saver_writes_aligned_nifti_montage_and_table(tmp_path):
    spacing, origin = (0.9, 0.8, 1.5), (-30.0, -25.0, -60.0)
    grid = np.indices((64, 64, 40), dtype=np.float64)
    world = [origin[a] + grid[a] * spacing[a] for a in range(3)]
    centre = (-3.4, 2.2, -30.1)
    hu = -850.0 + 900.0 * np.exp(-sum((world[a] - centre[a]) ** 2 for a in range(3)) / (2 * 3.0**2))
    scan = write_nifti(hu.astype(np.int16), spacing, origin, tmp_path / "case.nii.gz")
    candidates = tmp_path / "candidates.csv"
    candidates.write_text(f"seriesuid,coordX,coordY,coordZ,class\ncase,{centre[0]},{centre[1]},{centre[2]},1\n"
                          f"case,{centre[0] + 25},{centre[1]},{centre[2]},0\n")  # fmt: skip
    annotations = tmp_path / "annotations.csv"
    annotations.write_text(
        f"seriesuid,coordX,coordY,coordZ,diameter_mm\ncase,{centre[0]},{centre[1]},{centre[2]},8.0\n"
    )
    ds = MultiScalePatchDataset([{"image": str(scan), "seriesuid": "case"}], candidates,
                                ((20, 20, 20), (30, 30, 30), (40, 40, 40)), (12, 12, 12))  # fmt: skip
    saver = GradCAMSaver(
        BlobNet(), ds, tmp_path / "out", threshold=0.5, annotations=annotations, target_layer="conv3"
    )
    assert saver.explain({0: 0.93, 1: 0.2})["explained"] == 1  # only the first is called a nodule
    # called a nodule too, the lung-only candidate gets an all-zero map: no peak is made up for it
    summary = saver.explain({0: 0.93, 1: 0.6})
    assert summary["explained"] == 2 and summary["true_positives_explained"] == 1
    assert summary["empty_heatmaps"] == 1
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert files == [
        "case_0_gradcam.nii.gz",
        "case_0_gradcam.png",
        "case_1_gradcam.nii.gz",
        "case_1_gradcam.png",
        "gradcam.csv",
        "gradcam_summary.json",
    ]
    heat = nib.load(tmp_path / "out" / "case_0_gradcam.nii.gz")
    # on the scan file's own grid (LPS-ordered here, not the loaded RAS one): it overlays voxel by voxel
    source = nib.load(scan)
    assert heat.shape == source.shape
    np.testing.assert_allclose(heat.affine, source.affine, atol=1e-5)
    assert not np.allclose(heat.affine, np.asarray(lungcad_io.load_image(str(scan)).affine), atol=1e-3)
    data = np.asarray(heat.dataobj)
    assert 0.0 <= data.min() and data.max() <= 1.0 + 1e-6 and data.max() > 0
    # the map is confined to the finest (20 mm) patch around the candidate ...
    nonzero = np.argwhere(data > 0)
    extent_mm = (nonzero.max(0) - nonzero.min(0) + 1) * np.asarray(spacing)
    assert np.all(extent_mm <= 20.0 + 2 * np.asarray(spacing))
    # ... and peaks on the nodule, at its world position
    peak = np.unravel_index(int(data.argmax()), data.shape)
    np.testing.assert_allclose(voxel_to_world(np.asarray(peak, float), heat.affine)[0], centre, atol=2.0)
    assert summary["fraction_peak_inside_nodule"] == 1.0
    row = (tmp_path / "out" / "gradcam.csv").read_text().splitlines()
    assert row[0].startswith("seriesuid,coordX,coordY,coordZ,probability") and len(row) == 3
    assert ",,," in row[2]  # the empty map's peak is left blank
    stored = json.loads((tmp_path / "out" / "gradcam_summary.json").read_text())
    assert stored["target_layer"] == "conv3" and stored["peaks_inside_nodule"] == 1
    assert (tmp_path / "out" / "case_0_gradcam.png").read_bytes()[:4] == b"\x89PNG"
