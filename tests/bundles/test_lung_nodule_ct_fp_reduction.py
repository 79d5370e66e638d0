"""The false-positive-reduction bundle end to end (tiny runs), and its embedded phantom candidates."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from lungcad_transforms.apps.detection.phantom_candidates import (
    HARD_NEGATIVE_KINDS,
    ensure_fp_dataset,
    phantom_candidates,
)
from lungcad_transforms.data.tables import read_annotations, read_candidates
from lungcad_transforms.metrics.froc import froc_score

REPO = Path(__file__).resolve().parents[2]
BUNDLE = REPO / "bundles" / "lung_nodule_ct_fp_reduction"
CONFIGS = BUNDLE / "configs"
TINY_DATA = dict(n_train=2, n_val=1, n_test=1, shape=(72, 72, 48), spacing=(1.5, 1.5, 2.0), seed=7)
TINY_DATASET = (ensure_fp_dataset, "fp", "phantoms")  # built by conftest.tiny_dataset
# narrow networks and a short epoch: these tests check the workflows, not the accuracy
TINY_RUN = ["--network_def#features", "[4,8,8,8,8]", "--network_def#fc_features", "[16,16]"]  # the MGI-CNN
TINY_SMALL3DCNN = ["--network_def#channels", "[4,8,8]", "--network_def#fc_features", "[16,8]"]


@pytest.fixture(scope="module")
def trained_bundle(tiny_dataset, tmp_path_factory, bundle_cli) -> Path:
    """One tiny epoch through `monai.bundle run training`; the bundle root holds models/, eval/, cache/."""
    root = tmp_path_factory.mktemp("fp_bundle")
    result = bundle_cli(
        "training", ["train.json"], "--dataset_dir", str(tiny_dataset), "--bundle_root", str(root),
        "--epochs", "1", "--samples_per_epoch", "32", "--batch_size", "16", "--val_interval", "1", *TINY_RUN,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return root


# ------------------------------------------------------------------------------------------ embedded data
def test_phantom_candidates_put_positives_on_nodules_and_hard_negatives_off_them():
    from lungcad_transforms.apps.phantoms.ct import make_ct_phantom

    ct = make_ct_phantom((96, 96, 64), spacing=(1.5, 1.5, 2.0), seed=5, n_nodules=3)
    rows = phantom_candidates(ct, seed=5)
    annotations = [{"seriesuid": ct.seriesuid, "coordX": n.center_lps[0], "coordY": n.center_lps[1],
                    "coordZ": n.center_lps[2], "diameter_mm": n.diameter_mm} for n in ct.nodules]  # fmt: skip
    positives = [r for r in rows if r["class"] == 1]
    negatives = [r for r in rows if r["class"] == 0]
    assert len(positives) == 2 * len(ct.nodules)
    assert {r["kind"] for r in negatives} == set(HARD_NEGATIVE_KINDS)
    centres = np.array([n.center_lps for n in ct.nodules])
    radii = np.array([n.diameter_mm / 2 for n in ct.nodules])
    for r in rows:
        d = np.linalg.norm(centres - [r["coordX"], r["coordY"], r["coordZ"]], axis=1)
        if r["class"] == 1:
            assert d.min() <= 0.3 * radii[d.argmin()] + 1e-3  # jittered, but well inside its nodule
        else:
            assert np.all(d >= radii + 4.0 - 1e-3)  # clear of every nodule
    # scored by their class, the candidates give a perfect LUNA16 FROC: every positive hits, no negative does
    scored = [{**r, "probability": float(r["class"])} for r in rows]
    result = froc_score(annotations, scored, [ct.seriesuid])
    assert result.cpm == 1.0 and result.n_false_positives == len(negatives)


def test_embedded_dataset_layout(tiny_dataset):
    datalist = json.loads((tiny_dataset / "datalist.json").read_text())
    assert [len(datalist[s]) for s in ("training", "validation", "test")] == [2, 1, 1]
    for split in ("training", "validation", "test"):
        for entry in datalist[split]:
            assert (tiny_dataset / entry["image"]).is_file() and f"images/{split}/" in entry["image"]
    rows = read_candidates(tiny_dataset / "candidates.csv")
    assert {r["class"] for r in rows} == {0, 1}
    test_rows = read_candidates(tiny_dataset / "candidates_test.csv")
    assert {r["seriesuid"] for r in test_rows} == {datalist["test"][0]["seriesuid"]}
    assert read_annotations(tiny_dataset / "annotations.csv")
    # asked again, it is found and kept as it is
    before = (tiny_dataset / "candidates.csv").stat().st_mtime_ns
    assert ensure_fp_dataset(tiny_dataset, **TINY_DATA) == str(tiny_dataset)
    assert (tiny_dataset / "candidates.csv").stat().st_mtime_ns == before


def test_two_processes_creating_the_dataset_at_once_make_one(tmp_path):
    code = (
        "import sys; from lungcad_transforms.apps.detection import ensure_fp_dataset; "
        "ensure_fp_dataset(sys.argv[1], n_train=1, n_val=1, n_test=1, shape=(64, 64, 40), spacing=(1.5, 1.5, 2.0))"
    )
    target = tmp_path / "shared"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(target)], env=env, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    for p in procs:
        assert p.wait(timeout=180) == 0, p.stderr.read().decode()
    assert (target / "datalist.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == [
        "shared"
    ]  # no leftovers
    assert len(list((target / "images").rglob("*.nii.gz"))) == 3


# ---------------------------------------------------------------------------------------------- workflows
@pytest.mark.slow
def test_training_writes_a_checkpoint_that_loads_with_weights_only(trained_bundle):
    from lungcad_transforms.networks.nets.mgicnn import MGICNN

    checkpoint = trained_bundle / "models" / "model.pt"
    assert checkpoint.is_file()
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    net = MGICNN(patch_size=(20, 20, 12), features=(4, 8, 8, 8, 8), fc_features=(16, 16))
    net.load_state_dict(state)
    # the patch cache of the run: one file per training / validation scan
    assert len(list((trained_bundle / "data" / "patch_cache").glob("*.npz"))) == 3
    assert not (
        trained_bundle / "data" / "embedded"
    ).exists()  # a dataset_dir given: no built-in data written


@pytest.mark.slow
def test_built_in_data_is_written_by_initialize_when_no_dataset_dir_is_given(tmp_path, bundle_cli):
    # `run training` and `run` both execute "initialize", where the built-in data is created on first use
    embedded = json.dumps(TINY_DATA)
    result = bundle_cli(
        "training", ["train.json"], "--bundle_root", str(tmp_path), "--embedded_data", embedded,
        "--embedded_hybrid#backgrounds", "[]",  # phantoms only: the real-scan part has its own test below
        "--epochs", "1", "--samples_per_epoch", "16", "--batch_size", "16", "--val_interval", "1", *TINY_RUN,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    datalist = json.loads((tmp_path / "data" / "embedded" / "datalist.json").read_text())
    assert [len(datalist[s]) for s in ("training", "validation", "test")] == [2, 1, 1]
    assert (tmp_path / "models" / "model.pt").is_file()


@pytest.mark.slow
def test_standard_run_trains_the_small_3d_cnn(tiny_dataset, tmp_path, bundle_cli):
    result = bundle_cli(
        None, ["train.json", "small3dcnn.json"], "--dataset_dir", str(tiny_dataset), "--bundle_root",
        str(tmp_path), "--epochs", "1", "--samples_per_epoch", "16", "--batch_size", "16", "--val_interval", "1",
        *TINY_SMALL3DCNN,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    # the small 3D CNN, chosen by one overlay, which keeps its checkpoint apart from the MGI-CNN's
    state = torch.load(tmp_path / "models" / "small3dcnn" / "model.pt", map_location="cpu", weights_only=True)
    assert "conv3.conv.weight" in state
    assert not (tmp_path / "models" / "model.pt").exists()


@pytest.mark.slow
def test_evaluation_writes_luna16_results_froc_and_gradcam(trained_bundle, tiny_dataset, bundle_cli):
    result = bundle_cli(
        None, ["train.json", "evaluate.json"], "--dataset_dir", str(tiny_dataset), "--bundle_root",
        str(trained_bundle), "--n_bootstrap", "50", "--nodule_threshold", "0.0", "--gradcam_max_candidates", "2",
        *TINY_RUN,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = trained_bundle / "eval"
    with open(out / "results.csv", newline="") as fh:
        header = next(csv.reader(fh))
    # what the official LUNA16 script looks up by name
    assert header[:5] == ["seriesuid", "coordX", "coordY", "coordZ", "probability"]
    results = read_candidates(out / "results.csv")
    test_rows = read_candidates(tiny_dataset / "candidates_test.csv")
    assert len(results) == len(test_rows)
    assert all(0.0 <= r["probability"] <= 1.0 for r in results)
    froc = json.loads((out / "froc.json").read_text())
    assert len(froc["sensitivities"]) == 7 and 0.0 <= froc["cpm"] <= 1.0
    assert froc["cpm_ci"] is not None and froc["auc"] is not None
    assert (out / "froc.png").read_bytes()[:4] == b"\x89PNG"
    metrics = (out / "metrics.csv").read_text()
    assert "val_cpm" in metrics and "val_auc" in metrics
    gradcam = json.loads((out / "gradcam" / "gradcam_summary.json").read_text())
    assert gradcam["explained"] == 2 and "fraction_peak_inside_nodule" in gradcam
    assert len(list((out / "gradcam").glob("*_gradcam.nii.gz"))) == 2
    assert len(list((out / "gradcam").glob("*_gradcam.png"))) == 2


@pytest.mark.slow
def test_inference_scores_good_rows_and_skips_bad_ones(trained_bundle, tiny_dataset, tmp_path, bundle_cli):
    test_rows = (tiny_dataset / "candidates_test.csv").read_text().splitlines()
    uid = test_rows[1].split(",")[0]
    # the segmentation bundle's output form: probability and diameter_mm columns
    table = ["seriesuid,coordX,coordY,coordZ,probability,diameter_mm"]
    table += [",".join(line.split(",")[:4]) + ",0.9,6.0" for line in test_rows[1:]]
    table += [
        f"{uid},abc,1.0,2.0,0.5,4.0",  # malformed
        f"{uid},900.0,900.0,900.0,0.5,4.0",  # outside the scan
        "1.2.3.4.5.6.7,1.0,2.0,3.0,0.5,4.0",  # no such scan
    ]
    candidates = tmp_path / "candidates.csv"
    candidates.write_text("\n".join(table) + "\n")
    out = tmp_path / "out"
    result = bundle_cli(
        None, ["train.json", "inference.json"], "--bundle_root", str(trained_bundle), "--dataset_dir",
        str(tiny_dataset / "images" / "test"), "--candidates_file", str(candidates), "--output_dir", str(out),
        "--nodule_threshold", "0.0", "--gradcam_max_candidates", "1", *TINY_RUN,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    log = result.stdout + result.stderr
    assert (
        "coordX is 'abc', not a number" in log
        and "outside scan" in log
        and "1.2.3.4.5.6.7 has no scan" in log
    )
    scored = read_candidates(out / "results.csv")
    assert len(scored) == len(test_rows) - 1  # every good row, none of the bad ones
    assert all("diameter_mm" in r for r in scored)
    skipped = (out / "skipped.csv").read_text().splitlines()
    assert len(skipped) == 1 + 3
    assert len(list((out / "gradcam").glob("*_gradcam.nii.gz"))) == 1


@pytest.mark.slow
def test_evaluation_without_weights_says_how_to_train(tiny_dataset, tmp_path, bundle_cli):
    result = bundle_cli(
        None, ["train.json", "evaluate.json"], "--dataset_dir", str(tiny_dataset), "--bundle_root",
        str(tmp_path), *TINY_RUN,
    )  # fmt: skip
    assert result.returncode != 0
    assert "no trained weights" in result.stdout + result.stderr


@pytest.mark.slow
def test_two_process_training_under_torchrun(tiny_dataset, tmp_path, bundle_cli):
    files = bundle_cli.config_arg(["train.json", "multi_gpu_train.json"])
    result = bundle_cli.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes=1", "--nproc_per_node=2",
         "-m", "monai.bundle", "run", "training", "--config_file", files,
         "--dataset_dir", str(tiny_dataset), "--bundle_root", str(tmp_path), "--epochs", "1",
         "--samples_per_epoch", "16", "--batch_size", "8", "--val_interval", "1", *TINY_RUN],
        timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (tmp_path / "models" / "model.pt").is_file()
    assert "val_cpm" in result.stdout + result.stderr


@pytest.mark.slow
def test_embedded_default_trains_on_real_hard_negatives(tmp_path: Path, real_data: Path, bundle_cli):
    root = tmp_path / "bundle"
    result = bundle_cli(
        "training", ["train.json"], "--bundle_root", str(root), "--epochs", "1", "--samples_per_epoch", "32",
        "--batch_size", "16", "--val_interval", "1", *TINY_RUN,
        "--embedded_data", "{'n_train': 1, 'n_val': 1, 'n_test': 1, 'shape': [64, 64, 48], 'spacing': [1.5, 1.5, 2.0], 'seed': 7}",
        "--embedded_hybrid", "{'cases_per_background': 2, 'window_mm': [96.0, 96.0, 48.0], 'test_backgrounds': ['LIDC-IDRI'], 'seed': 0}",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    embedded = root / "data" / "embedded"
    rows = read_candidates(embedded / "candidates_training.csv")
    hybrid_uids = {
        e["seriesuid"]
        for e in json.loads((embedded / "datalist.json").read_text())["training"]
        if e["source"] == "hybrid"
    }
    # the real scan's own nodule-like spots are class-0 training candidates
    assert hybrid_uids and any(r["class"] == 0 and r["seriesuid"] in hybrid_uids for r in rows)
    assert (root / "models" / "model.pt").is_file()
