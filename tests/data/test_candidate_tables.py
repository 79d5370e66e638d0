"""The lenient candidate-table reader keeps good rows and reports bad ones."""

from __future__ import annotations

import pytest

from lungcad_transforms.data.tables import read_candidates_lenient
from lungcad_transforms.errors import InputError

SPACING = (0.8, 0.7, 1.5)  # anisotropic, like a real chest CT
ORIGIN = (-40.3, -35.1, -120.0)  # LPS world of voxel (0, 0, 0)
SHAPE = (96, 100, 48)
SCALES = ((20.0, 20.0, 20.0), (30.0, 30.0, 30.0), (40.0, 40.0, 40.0))


def test_lenient_reader_keeps_good_rows_and_reports_bad_ones(tmp_path):
    table = tmp_path / "candidates.csv"
    table.write_text(
        "seriesuid,coordX,coordY,coordZ,probability,diameter_mm\n"
        "1.2.3,10.0,-20.0,30.0,0.9,6.5\n"
        "1.2.3,abc,-20.0,30.0,0.9,6.5\n"
        ",10.0,-20.0,30.0,0.9,6.5\n"
        "1.2.3,10.0,-20.0\n"
        "1.2.3,11.0,-21.0,nan,0.8,4.0\n"
        "1.2.4,12.0,-22.0,32.0,0.7,5.0\n"
    )
    rows, problems = read_candidates_lenient(table)
    assert [r["seriesuid"] for r in rows] == ["1.2.3", "1.2.4"]
    assert rows[0]["diameter_mm"] == 6.5 and rows[0]["line"] == 2
    assert len(problems) == 4
    assert any("line 3" in p and "coordX" in p for p in problems)
    with pytest.raises(InputError, match="lacks column"):
        (tmp_path / "nohead.csv").write_text("a,b,c\n1,2,3\n")
        read_candidates_lenient(tmp_path / "nohead.csv")
