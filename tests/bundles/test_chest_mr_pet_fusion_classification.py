"""The MR/PET fusion classification bundle end to end on tiny phantoms (all three modes, 3-D, the
intermediate-fusion overlay, evaluation, inference on DICOM studies and on the real sarcoma MR/PET),
the two-process run, bad input, and the comparison script."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lungcad_transforms.apps.mrpet.phantom_pairs import ensure_mrpet_dataset
from lungcad_transforms.data.csv_table import read_csv_rows

pytest.importorskip("itk")
REPO = Path(__file__).resolve().parents[2]
BUNDLE = REPO / "bundles" / "chest_mr_pet_fusion_classification"
CONFIGS = BUNDLE / "configs"
TINY_DATA = dict(n_train=4, n_val=4, n_test=4, n_misaligned=1, mr_shape=(48, 48, 12), mr_spacing=(6.0, 6.0, 8.0),
                 pet_shape=(24, 24, 12), seed=77)  # fmt: skip
TINY_DATASET = (ensure_mrpet_dataset, "mrpet", "phantoms")  # built by conftest.tiny_dataset
# a narrow ResNet34 on 40 x 40 crops: these tests check the workflows, not the accuracy
TINY = {"input_spacing": [6.0, 6.0], "input_size": [48, 48], "crop_size": [40, 40], "epochs": 1, "batch_size": 16,
        "network_def#block_inplanes": [4, 8, 16, 32], "gradcam_patients": 2}  # fmt: skip
TINY_CLI = [arg for k, v in TINY.items() for arg in (f"--{k}", json.dumps(v))]


def _workflow(configs: list[str], workflow_type: str, **override):
    from monai.bundle import ConfigWorkflow

    wf = ConfigWorkflow(
        config_file=[str(CONFIGS / c) for c in configs], workflow_type=workflow_type, **{**TINY, **override}
    )
    wf.initialize()
    wf.run()
    wf.finalize()
    return wf


def _run(args: list[str], timeout: int = 600) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    return subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


def _rows(path: Path) -> list[list[str]]:
    return [row for _, row in read_csv_rows(path)]


@pytest.fixture(scope="module")
def trained(tiny_dataset, tmp_path_factory) -> Path:
    """One tiny epoch per mode; mr_pet through `python -m monai.bundle run training --mode mr_pet`."""
    root = tmp_path_factory.mktemp("mrpet_bundle")
    (root / "tracking").mkdir()
    result = _run([sys.executable, "-m", "monai.bundle", "run", "training", "--config_file", str(CONFIGS / "train.json"),
                   "--dataset_dir", str(tiny_dataset), "--bundle_root", str(root), "--mode", "mr_pet", *TINY_CLI,
                   "--tracking", "mlflow", "--tracking_uri", f"sqlite:///{root / 'tracking' / 'mlruns.db'}"])  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "val_auc" in result.stdout + result.stderr
    for mode in ("mr", "pet"):
        _workflow(["train.json"], "train", dataset_dir=str(tiny_dataset), bundle_root=str(root), mode=mode)
    return root


def test_tracked_mr_pet_training_records_params_metrics_and_checkpoints_in_mlflow(trained):
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{trained / 'tracking' / 'mlruns.db'}")
    experiment = client.get_experiment_by_name("chest_mr_pet_fusion_classification")
    (run,) = client.search_runs([experiment.experiment_id])  # the two untracked modes add no run
    assert run.info.status == "FINISHED" and run.data.params["mode"] == "mr_pet"
    assert {"train_loss", "val_auc"} <= set(run.data.metrics)
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"model_mr_pet_final.pt", "model_mr_pet.pt"} <= artifacts


def test_training_in_all_three_modes_saves_a_network_per_mode(trained):
    for mode, channels in (("mr", 1), ("pet", 1), ("mr_pet", 2)):
        state = torch.load(trained / "models" / f"model_{mode}.pt", map_location="cpu", weights_only=True)
        assert state["conv1.weight"].shape[1] == channels, mode
    assert list((trained / "eval" / "mr_pet").glob("events.out.tfevents.*"))


def test_evaluation_writes_metrics_tables_and_plots(trained, tiny_dataset):
    _workflow(
        ["train.json", "evaluate.json"],
        "eval",
        dataset_dir=str(tiny_dataset),
        bundle_root=str(trained),
        mode="mr_pet",
    )
    out = trained / "eval" / "mr_pet"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["slices"]["n"] == 4 * 12 and metrics["patients"]["n"] == 4
    assert set(metrics["patients"]) >= {"accuracy", "precision", "recall", "roc_auc", "confusion"}
    slices = _rows(out / "slices.csv")
    assert slices[0] == ["patient", "slice", "probability", "label"] and len(slices) == 1 + 48
    assert all(0.0 <= float(r[2]) <= 1.0 for r in slices[1:])
    patients = _rows(out / "patients.csv")
    assert len(patients) == 1 + 4
    for name in ("confusion_slices.png", "confusion_patients.png", "roc.png"):
        assert (out / name).stat().st_size > 5000
    assert len(list((out / "gradcam").glob("*.png"))) == 2


def test_inference_on_a_folder_of_dicom_studies_pairs_by_study_and_registers_the_misaligned_one(
    trained, tiny_dataset
):
    _workflow(["train.json", "inference.json"], "infer", dataset_dir=str(tiny_dataset), bundle_root=str(trained), mode="mr_pet",
              input_dir=str(tiny_dataset / "studies"))  # fmt: skip
    out = trained / "eval" / "inference" / "mr_pet"
    patients = _rows(out / "patients.csv")
    assert len(patients) == 1 + 13 and patients[1][3] == ""  # no labels at inference: the column stays empty
    datalist = json.loads((tiny_dataset / "datalist.json").read_text())
    moved = datalist["misaligned"][0]["patient"]
    records = {p.stem: json.loads(p.read_text()) for p in (out / "registration").glob("*.json")}
    assert records[moved]["method"] == "rigid" and (out / "registration" / f"{moved}_elastix.txt").is_file()
    assert all(r["method"] == "world" for name, r in records.items() if name != moved)


def test_inference_on_the_real_sarcoma_mr_pet_in_all_three_modes(trained, real_data, tmp_path):
    root = real_data / "mr_pet" / "sts_ibsi_cropped"
    cases = sorted(p.name for p in root.glob("STS_*"))
    if not cases:
        pytest.skip("sarcoma MR/PET cases missing from the real test data")
    entries = [{"patient": c, "mr": str(root / c / "MR_T1/nifti/image/image.nii.gz"), "pet": str(root / c / "PET/nifti/image/image.nii.gz"),
                "label": str(root / c / "MR_T1/nifti/mask/mask.nii.gz")} for c in cases]  # fmt: skip
    datalist = tmp_path / "sarcoma.json"
    datalist.write_text(json.dumps(entries))
    for mode in ("mr", "pet", "mr_pet"):
        _workflow(["train.json", "inference.json"], "infer", bundle_root=str(trained), mode=mode, datalist_file=str(datalist),
                  input_spacing=[3.6, 3.6], input_size=[48, 48])  # fmt: skip
        out = trained / "eval" / "inference" / mode
        patients = _rows(out / "patients.csv")
        assert [r[0] for r in patients[1:]] == cases and all(r[3] == "1" for r in patients[1:]), (
            mode
        )  # every case has a tumour
        records = [json.loads((out / "registration" / f"{c}.json").read_text()) for c in cases]
        # NIfTI carries no Frame of Reference: PET is registered to MR, and covers the MR crop
        assert all(r["method"] == "rigid" and r["overlap_fraction"] > 0.5 for r in records), mode
        assert {f"{c}.png" for c in cases} <= {p.name for p in (out / "gradcam").glob("*.png")}, mode


def test_intermediate_fusion_and_3d_variants_train(tiny_dataset, tmp_path):
    _workflow(["train.json", "intermediate_fusion.json"], "train", dataset_dir=str(tiny_dataset), bundle_root=str(tmp_path),
              **{"network_def#block_inplanes": [4, 8, 16, 32]})  # fmt: skip
    state = torch.load(
        tmp_path / "models" / "model_mr_pet_intermediate.pt", map_location="cpu", weights_only=True
    )
    assert state["encoders.0.conv1.weight"].shape[1] == 1 and state["encoders.1.conv1.weight"].shape[1] == 1
    _workflow(["train.json"], "train", dataset_dir=str(tiny_dataset), bundle_root=str(tmp_path), spatial_dims=3, mode="mr",
              batch_size=2, model_name="model_3d.pt")  # fmt: skip
    state = torch.load(tmp_path / "models" / "model_3d.pt", map_location="cpu", weights_only=True)
    assert state["conv1.weight"].ndim == 5


def test_bad_input_stops_with_the_file_and_the_problem(trained, tiny_dataset, tmp_path):
    studies = tmp_path / "studies"
    shutil.copytree(tiny_dataset / "studies" / "MRPET-000", studies / "MRPET-000")
    shutil.rmtree(studies / "MRPET-000" / "PT")
    result = _run([sys.executable, "-m", "monai.bundle", "run", "--config_file",
                   str([str(CONFIGS / "train.json"), str(CONFIGS / "inference.json")]), "--bundle_root", str(trained),
                   "--input_dir", str(studies), *TINY_CLI])  # fmt: skip
    assert result.returncode != 0
    assert "has no PET series: missing modality" in result.stdout + result.stderr


@pytest.mark.slow
def test_two_process_training_under_torchrun(tiny_dataset, tmp_path):
    files = [str(CONFIGS / "train.json"), str(CONFIGS / "multi_gpu_train.json")]
    result = _run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes=1", "--nproc_per_node=2",
                   "-m", "monai.bundle", "run", "training", "--config_file", str(files), "--dataset_dir", str(tiny_dataset),
                   "--bundle_root", str(tmp_path), *TINY_CLI])  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (tmp_path / "models" / "model_mr_pet.pt").is_file()
    assert "val_auc" in result.stdout + result.stderr


def test_compare_fusion_script_writes_the_comparison(tiny_dataset, tmp_path):
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import compare_fusion
    finally:
        sys.path.pop(0)
    defaults = compare_fusion.build_parser().parse_args([])  # the study the docs report: 3 seeds, 3 modes
    assert (
        defaults.preset == "study" and len(defaults.seeds) >= 3 and defaults.modes == ["mr", "pet", "mr_pet"]
    )
    work, out = tmp_path / "work", tmp_path / "results"
    (work / "data").mkdir(parents=True)
    (work / "data" / "phantoms").symlink_to(tiny_dataset)  # the module's tiny patients: none to build here
    assert compare_fusion.main(["--preset", "tiny", "--seeds", "0", "1", "--n_bootstrap", "50", "--work_dir", str(work),
                                "--out", str(out)]) == 0  # fmt: skip
    results = json.loads((out / "results.json").read_text())
    assert set(results["modes"]) == {"mr", "pet", "mr_pet"}
    assert results["patients"] == [
        e["patient"] for e in json.loads((tiny_dataset / "datalist.json").read_text())["test"]
    ]
    for mode in results["modes"].values():
        assert len(mode["per_seed_patient_auc"]) == 2 and len(mode["patients"]["roc_auc_ci"]) == 2
        low, high = mode["patients"]["roc_auc_ci"]
        assert 0.0 <= low <= high <= 1.0
        assert sum(map(sum, mode["patients"]["confusion"])) == len(results["patients"])
    assert set(results["paired_auc_tests"]) == {"mr_pet_vs_mr", "mr_pet_vs_pet"}
    assert results["settings"]["preset"] == "tiny" and results["timing"]["cpu_s"] > 0
    markdown = (out / "results.md").read_text()
    assert "| MR+PET |" in markdown and "| mode | TN | FP | FN | TP |" in markdown
    assert (out / "roc.png").stat().st_size > 5000 and len(list(out.glob("confusion_*.png"))) == 3
