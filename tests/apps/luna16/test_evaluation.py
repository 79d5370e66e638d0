"""The LUNA16 evaluation command: files and in-memory lists agree, seven sensitivities and CPM printed, bad input on stderr."""

from __future__ import annotations

import argparse
import csv
import json
import re

import numpy as np
import pytest
from luna16_cases import ANN_COLS, S0, random_case, write_csv

from lungcad_transforms.apps.luna16.evaluation import add_froc_arguments, evaluate_files, froc_command
from lungcad_transforms.data.tables import write_results_csv
from lungcad_transforms.metrics.froc import FROC_FP_RATES, froc_score


# ------------------------------------------------------------------------------------------------
# inputs, outputs, command
# ------------------------------------------------------------------------------------------------
@pytest.fixture()
def luna_files(tmp_path):
    """A small evaluation set on disk, in LUNA16 form."""
    nodules, excluded, marks, uids = random_case(5)
    write_csv(tmp_path / "annotations.csv", ANN_COLS, nodules)
    write_csv(tmp_path / "annotations_excluded.csv", ANN_COLS, excluded)
    write_results_csv(marks, tmp_path / "results.csv")
    (tmp_path / "seriesuids.csv").write_text("".join(f"{u}\n" for u in uids))
    return tmp_path, (nodules, excluded, marks, uids)


def test_files_and_lists_give_the_same_result(luna_files):
    folder, (nodules, excluded, marks, uids) = luna_files
    from_files = evaluate_files(
        folder / "annotations.csv",
        folder / "seriesuids.csv",
        folder / "results.csv",
        folder / "annotations_excluded.csv",
    )
    from_lists = froc_score(nodules, marks, uids, excluded=excluded)
    np.testing.assert_array_equal(from_files.sensitivities, from_lists.sensitivities)
    assert from_files.sources["results"] == str(folder / "results.csv")


def froc_argv(folder, results: str = "results.csv", *options: str) -> list[str]:
    """The command line evaluating ``results`` against the ``luna_files`` in ``folder``, then ``options``."""
    files = {"--annotations": "annotations.csv", "--seriesuids": "seriesuids.csv", "--results": results}
    argv = []
    for option, name in files.items():
        argv += [option, str(folder / name)]
    return argv + list(options)


def run_cli(argv):
    parser = argparse.ArgumentParser(prog="lungcad froc")
    add_froc_arguments(parser)
    return froc_command(parser.parse_args(argv))


def test_command_prints_seven_sensitivities_then_cpm_and_writes_the_report(luna_files, capsys):
    folder, (nodules, excluded, marks, uids) = luna_files
    out = folder / "report"
    argv = froc_argv(folder, "results.csv", "--excluded", str(folder / "annotations_excluded.csv"))
    argv += ["--out", str(out), "--bootstrap", "40", "--seed", "1"]
    assert run_cli(argv) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    expected = froc_score(nodules, marks, uids, excluded=excluded)
    assert re.fullmatch(r"CPM \d\.\d{4}", lines[-1])
    assert float(lines[-1].split()[1]) == pytest.approx(expected.cpm, abs=5e-5)
    sens_lines = lines[-8:-1]
    for rate, value, line in zip(FROC_FP_RATES, expected.sensitivities, sens_lines, strict=True):
        m = re.fullmatch(r"sensitivity at ([\d.]+) FP/scan: (\d\.\d{4}) \(95% CI \d\.\d{4}-\d\.\d{4}\)", line)
        assert m and float(m.group(1)) == rate and float(m.group(2)) == pytest.approx(value, abs=5e-5)
    report = json.loads((out / "froc.json").read_text())
    assert report["cpm"] == pytest.approx(expected.cpm) and report["n_bootstrap"] == 40
    assert len(report["ci_low"]) == 7 and report["total_nodules"] == expected.total_nodules
    assert (out / "froc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    curve = list(csv.reader(open(out / "froc_curve.csv")))
    assert (
        curve[0] == ["fp_per_scan", "sensitivity", "threshold"]
        and len(curve) == len(expected.curve_fp_rate) + 1
    )


def test_command_reports_bad_input_on_stderr_with_status_2(luna_files, capsys):
    folder, _ = luna_files
    (folder / "broken.csv").write_text(f"seriesuid,coordX,coordY,coordZ,probability\n{S0},x,0,0,0.5\n")
    argv = froc_argv(folder, "broken.csv", "--out", str(folder / "never"))
    assert run_cli(argv) == 2
    err = capsys.readouterr().err
    assert "broken.csv: line 2: coordX is 'x', not a number" in err
    assert not (folder / "never").exists()


def test_lungcad_froc_subcommand(luna_files, capsys):
    from lungcad_transforms.cli import main

    folder, _ = luna_files
    argv = ["froc", *froc_argv(folder)]
    assert main(argv) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert (
        re.fullmatch(r"CPM \d\.\d{4}", out[-1])
        and len([o for o in out if o.startswith("sensitivity at")]) == 7
    )
