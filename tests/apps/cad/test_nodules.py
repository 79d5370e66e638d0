"""label_nodules: each kept nodule gets its own mask component, label and measurements."""

from __future__ import annotations

import numpy as np
import pytest

from lungcad_transforms.apps.cad.measure import measure_nodule
from lungcad_transforms.apps.cad.nodules import label_nodules
from lungcad_transforms.data.coords import voxel_to_world

SPACING = (0.7, 0.7, 1.25)
AFFINE = np.array([[0.7, 0, 0, -160.0], [0, 0.7, 0, -150.0], [0, 0, 1.25, -300.0], [0, 0, 0, 1]])


def _sphere(shape, centre, diameter_mm):
    grid = np.indices(shape).astype(float)
    return sum(((grid[a] - centre[a]) * SPACING[a]) ** 2 for a in range(3)) <= (diameter_mm / 2) ** 2


def test_each_kept_nodule_is_labelled_and_measured_in_scan_coordinates():
    shape = (120, 110, 60)
    centres = [(30.0, 40.0, 20.0), (85.0, 70.0, 41.0)]
    diameters = [12.0, 7.0]
    seg = _sphere(shape, centres[0], diameters[0]) | _sphere(shape, centres[1], diameters[1])
    rng = np.random.default_rng(0)
    hu = np.where(seg, 40.0, -850.0).astype(np.float32) + rng.normal(0, 15, shape).astype(np.float32)
    lungs = np.zeros(shape, bool)
    lungs[10:110, 10:100, 5:55] = True
    far = voxel_to_world([[60.0, 15.0, 50.0]], AFFINE)[0]  # a candidate where the mask has nothing
    rows = [
        {"coordX": w[0], "coordY": w[1], "coordZ": w[2], "probability": p, "diameter_mm": d}
        for w, p, d in zip(voxel_to_world(centres[::-1], AFFINE), (0.9, 0.8), diameters[::-1], strict=True)
    ] + [{"coordX": far[0], "coordY": far[1], "coordZ": far[2], "probability": 0.7, "diameter_mm": 5.0}]

    labels, measured = label_nodules(rows, seg, hu, lungs, AFFINE)

    assert labels.dtype == np.uint16 and labels.shape == shape
    assert [m["label"] for m in measured] == [1, 2, 0]  # in row order; no mask component: label 0, no size
    assert "mean_diameter_mm" not in measured[2] and measured[2]["side"] in ("left", "right")
    for label, centre, diameter in ((1, centres[1], 7.0), (2, centres[0], 12.0)):
        voxels = labels == label
        assert np.array_equal(voxels, _sphere(shape, centre, diameter))
        m = measured[label - 1]
        # measured in the nodule's box, the same as on the whole scan, the slice counted in the scan
        whole = measure_nodule(hu, voxels, SPACING, lungs, centre).as_row()
        assert {k: m[k] for k in whole} == pytest.approx(whole)
        assert m["axial_slice"] == round(centre[2])
        assert m["mean_diameter_mm"] == pytest.approx(diameter, abs=1.0)
        assert m["density"] == "solid"
