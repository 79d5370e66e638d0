from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from lungcad_transforms.visualize.classification_plots import save_confusion_matrix_png, save_roc_png


def test_confusion_matrix_png_written(tmp_path):
    out = save_confusion_matrix_png([[40, 2], [5, 30]], tmp_path / "sub" / "cm.png", title="MR+PET")
    assert out == tmp_path / "sub" / "cm.png"
    with Image.open(out) as im:
        assert im.format == "PNG" and im.size[0] > 300 and im.size[1] > 300
        # not a blank canvas: the cells are drawn in colour
        assert len(np.unique(np.asarray(im.convert("L")))) > 10
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["cm.png"]  # no temporary left behind


@pytest.mark.parametrize(
    ("matrix", "names", "message"),
    [
        ([[1, 2, 3]], ("a", "b"), "square"),
        ([[1, 2], [3, 4]], ("a", "b", "c"), "class names"),
        ([[1, -1], [0, 2]], ("a", "b"), "negative"),
    ],
)
def test_confusion_matrix_rejects_bad_input(tmp_path, matrix, names, message):
    with pytest.raises(ValueError, match=message):
        save_confusion_matrix_png(matrix, tmp_path / "cm.png", class_names=names)
    assert not list(tmp_path.iterdir())


def test_roc_png_three_curves(tmp_path):
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 50)
    curves = {
        name: (labels, labels * shift + rng.normal(size=100))
        for name, shift in (("MR", 0.5), ("PET", 1.0), ("MR+PET", 2.0))
    }
    out = save_roc_png(curves, tmp_path / "roc.png", title="three modes")
    with Image.open(out) as im:
        assert im.format == "PNG"
        rgb = np.asarray(im.convert("RGB")).reshape(-1, 3)
    # matplotlib's first three cycle colours (blue, orange, green) are all drawn: one line per curve
    for colour in ((31, 119, 180), (255, 127, 14), (44, 160, 44)):
        assert (np.abs(rgb.astype(int) - colour).sum(axis=1) < 30).sum() > 50


def test_roc_rejects_single_class_and_mismatch(tmp_path):
    with pytest.raises(ValueError, match="both classes"):
        save_roc_png({"MR": ([1, 1, 1], [0.1, 0.5, 0.9])}, tmp_path / "roc.png")
    with pytest.raises(ValueError, match="labels but"):
        save_roc_png({"MR": ([0, 1], [0.1, 0.5, 0.9])}, tmp_path / "roc.png")
    with pytest.raises(ValueError, match="no ROC"):
        save_roc_png({}, tmp_path / "roc.png")
    assert not (tmp_path / "roc.png").exists()
