"""The FROC report figure and table."""

from __future__ import annotations

import json
import math

from luna16_cases import S0, far_mark, mark, nodule

from lungcad_transforms.metrics.froc import froc_score
from lungcad_transforms.visualize.froc_plot import save_froc_report


def test_save_froc_report_without_bootstrap(tmp_path):
    r = froc_score([nodule(S0, 0, 0, 0)], [mark(S0, 0, 0, 0, 0.7), far_mark(S0, 0.2)], [S0])
    paths = save_froc_report(r, tmp_path / "froc")
    assert sorted(paths) == ["curve", "json", "png"]
    data = json.loads(paths["json"].read_text())
    assert data["ci_low"] is None and data["sensitivities"] == [1.0] * 7 and math.isclose(data["cpm"], 1.0)
    assert sorted(p.name for p in (tmp_path / "froc").iterdir()) == [
        "froc.json",
        "froc.png",
        "froc_curve.csv",
    ]
