"""NoduleCandidatesHandler: candidate rows of every scan in one LUNA16 results table, detection figures."""

from __future__ import annotations

import json
from pathlib import Path

from ignite.engine import Engine

from lungcad_transforms.data.tables import read_candidates, write_annotations_csv
from lungcad_transforms.handlers.nodule_candidates import NoduleCandidatesHandler


def _row(uid: str, x: float, probability: float) -> dict:
    return {"seriesuid": uid, "coordX": x, "coordY": 0.0, "coordZ": 0.0, "probability": probability,
            "diameter_mm": 6.0, "volume_mm3": 113.1}  # fmt: skip


def _run(handler: NoduleCandidatesHandler, scans: list[tuple[str, list[dict]]]) -> None:
    def step(engine: Engine, batch: dict) -> dict:
        return {"candidates": batch["rows"]}

    engine = Engine(step)
    handler.attach(engine)
    engine.run([{"seriesuid": uid, "rows": rows} for uid, rows in scans], max_epochs=1)


def test_rows_of_all_scans_and_detection_figures(tmp_path: Path) -> None:
    annotations = write_annotations_csv(
        [{"seriesuid": "1.1", "coordX": 0.0, "coordY": 0.0, "coordZ": 0.0, "diameter_mm": 8.0}],
        tmp_path / "annotations.csv",
    )
    handler = NoduleCandidatesHandler(tmp_path / "eval", annotations=annotations)
    # scan 1.1: one hit on its nodule and one false positive 50 mm away; scan 1.2: no candidate at all
    _run(handler, [("1.1", [_row("1.1", 1.0, 0.9), _row("1.1", 50.0, 0.4)]), ("1.2", [])])

    rows = read_candidates(tmp_path / "eval" / "candidates.csv")
    assert [(r["seriesuid"], r["coordX"], r["probability"]) for r in rows] == [
        ("1.1", 1.0, 0.9),
        ("1.1", 50.0, 0.4),
    ]
    summary = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert summary["n_scans"] == 2 and summary["n_candidates"] == 2
    assert summary["candidate_sensitivity"] == 1.0
    assert summary["fp_per_scan"] == 0.5  # one false positive over two scans
    assert (tmp_path / "eval" / "froc.json").is_file()


def test_a_run_without_candidates_leaves_a_header_only_results_table(tmp_path: Path) -> None:
    handler = NoduleCandidatesHandler(tmp_path / "eval")
    _run(handler, [("1.1", []), ("1.2", [])])
    text = (tmp_path / "eval" / "candidates.csv").read_text()
    assert text == "seriesuid,coordX,coordY,coordZ,probability,diameter_mm,volume_mm3\n"
    assert handler.summary["n_scans"] == 2
    assert not (
        tmp_path / "eval" / "metrics.json"
    ).exists()  # no annotations, no skipped list: nothing to sum up
