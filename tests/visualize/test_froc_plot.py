"""The FROC report figure and table."""

from __future__ import annotations

import json
import math

from lungcad_transforms.metrics.froc import froc_score
from lungcad_transforms.visualize.froc_plot import save_froc_report

S0, S1, S2, S3 = (f"1.3.6.1.4.1.14519.5.2.1.6279.6001.10{i}" for i in range(4))
UNLISTED = "1.3.6.1.4.1.14519.5.2.1.6279.6001.999"


def nodule(uid: str, x: float, y: float, z: float, diameter: float = 10.0) -> dict:
    return {"seriesuid": uid, "coordX": x, "coordY": y, "coordZ": z, "diameter_mm": diameter}


def mark(uid: str, x: float, y: float, z: float, probability: float) -> dict:
    return {"seriesuid": uid, "coordX": x, "coordY": y, "coordZ": z, "probability": probability}


def far_mark(uid: str, probability: float, k: int = 0) -> dict:
    """A false positive: 100 mm from every nodule used in these tests."""
    return mark(uid, 100.0 + k, 100.0, 100.0, probability)


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
