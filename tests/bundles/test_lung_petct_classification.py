"""The PET/CT classification bundle end to end (tiny runs): training, transfer learning, evaluation with
patient verdicts and CAM, inference on a folder of DICOM studies and on the real NSCLC slab, two processes."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
import torch

from lungcad_transforms.apps.petct.phantom_studies import ensure_petct_dataset
from lungcad_transforms.handlers.classification_report import PATIENT_LEVELS

REPO = Path(__file__).resolve().parents[2]
BUNDLE = REPO / "bundles" / "lung_petct_classification"
CONFIGS = BUNDLE / "configs"
TINY_DATA = dict(
    n_train=3, n_val=3, n_test=3, ct_shape=(48, 48, 16), ct_spacing=(7.0, 7.0, 7.5), pet_shape=(24, 24, 8)
)
TINY_DATASET = (ensure_petct_dataset, "petct", "data")  # built by conftest.tiny_dataset
BUNDLE_TIMEOUT = 300
# a narrow Res-SE Net on the tiny grid: these tests check the workflows, not the accuracy
TINY_NET = {"channels": [4, 8, 8], "blocks": [1, 1]}
TINY_RUN = ["--pixdim", "[7.0,7.0]", "--spatial_size", "[48,48]", "--min_lesion_pixels", "1",
            "--net_kwargs", json.dumps(TINY_NET)]  # fmt: skip


def _ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout + result.stderr


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def trained_bundle(tiny_dataset, tmp_path_factory, bundle_cli) -> Path:
    """One tiny epoch through `monai.bundle run training`, tracked with `--tracking mlflow` (sqlite)."""
    root = tmp_path_factory.mktemp("petct_bundle")
    (root / "tracking").mkdir()
    _ok(bundle_cli("training", ["train.json"], "--dataset_dir", str(tiny_dataset), "--bundle_root", str(root),
                   "--epochs", "1", "--samples_per_epoch", "32", "--batch_size", "16", *TINY_RUN,
                   "--tracking", "mlflow", "--tracking_uri", _tracking_uri(root)))  # fmt: skip
    return root


def _tracking_uri(root: Path) -> str:
    return f"sqlite:///{root / 'tracking' / 'mlruns.db'}"


def test_tracked_training_records_params_metrics_and_checkpoints_in_mlflow(trained_bundle):
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=_tracking_uri(trained_bundle))
    (run,) = client.search_runs([client.get_experiment_by_name("lung_petct_classification").experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.params["max_epochs"] == "1" and run.data.params["backbone"] == "ressenet"
    assert {"train_loss", "val_auc"} <= set(run.data.metrics)
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"model_final.pt", "model.pt"} <= artifacts and any(a.endswith(".json") for a in artifacts)


def _tiny_network(**kwargs) -> torch.nn.Module:
    from lungcad_transforms.networks.nets.pretrained import build_transfer_classifier

    return build_transfer_classifier("ressenet", in_channels=3, net_kwargs=TINY_NET, **kwargs)


@pytest.mark.slow
def test_training_writes_a_checkpoint_of_the_configured_network(trained_bundle):
    state = torch.load(trained_bundle / "models" / "model.pt", map_location="cpu", weights_only=True)
    net = _tiny_network()
    net.load_state_dict(state)
    assert net(torch.rand(2, 3, 48, 48)).shape == (2, 2)
    assert not (trained_bundle / "data").exists()  # a dataset_dir given: no built-in data written


@pytest.mark.slow
def test_evaluation_writes_patient_verdicts_metrics_confusion_and_cam(
    trained_bundle, tiny_dataset, bundle_cli
):
    out = _ok(bundle_cli("evaluating", ["train.json", "evaluate.json"], "--dataset_dir", str(tiny_dataset),
                         "--bundle_root", str(trained_bundle), "--n_bootstrap", "50", "--cancer_threshold", "0.0",
                         "--cam_max_slices", "3", *TINY_RUN))  # fmt: skip
    eval_dir = trained_bundle / "eval"
    test_patients = [e["patient"] for e in json.loads((tiny_dataset / "datalist.json").read_text())["test"]]
    slices = _rows(eval_dir / "slices.csv")
    assert len(slices) == 3 * 16 and {r["patient"] for r in slices} == set(test_patients)
    patients = _rows(eval_dir / "patients.csv")
    assert [r["patient"] for r in patients] == test_patients
    assert [int(r["label"]) for r in patients] == [1, 0, 0]  # cancer, benign, normal
    for row in patients:  # threshold 0: every slice is called positive, so every rule says cancer
        assert row["majority_verdict"] == row["max_verdict"] == "1" and float(row["majority_score"]) == 1.0
    metrics = json.loads((eval_dir / "metrics.json").read_text())
    for level in PATIENT_LEVELS:
        assert set(metrics[level]["ci95"]) == {
            "accuracy",
            "sensitivity",
            "specificity",
            "precision",
            "roc_auc",
        }
        assert (eval_dir / f"confusion_{level}.png").stat().st_size > 1000
    assert metrics["patient_majority"]["confusion"] == [[0, 2], [0, 1]]
    assert "val_auc" in out
    # CAM: three most probable slices explained, overlays, heatmap on the CT grid, captum agrees with MONAI
    cam_dir = eval_dir / "cam"
    cams = _rows(cam_dir / "cams.csv")
    assert len(cams) == 3 and all((cam_dir / r["png"]).stat().st_size > 1000 for r in cams)
    summary = json.loads((cam_dir / "cam_summary.json").read_text())
    assert summary["explained"] == 3 and summary["captum_max_abs_diff"] < 1e-3
    heatmap = nib.load(cam_dir / summary["heatmaps"][0])
    patient = summary["heatmaps"][0].removesuffix("_cam.nii.gz")
    mask = nib.load(tiny_dataset / "masks" / f"{patient}.nii.gz")  # written on the CT grid
    assert heatmap.shape == mask.shape and np.allclose(heatmap.affine, mask.affine, atol=1e-4)
    explained = {int(r["slice"]) for r in cams if r["patient"] == patient}
    data = np.asarray(heatmap.dataobj)
    assert 0.0 <= data.min() and data.max() <= 1.0 + 1e-5
    assert not data[..., sorted(set(range(data.shape[2])) - explained)].any()  # only explained slices


def _study_folder(dataset: Path, target: Path) -> None:
    """The three test studies, plus one whose PET is on another Frame of Reference."""
    datalist = json.loads((dataset / "datalist.json").read_text())
    for entry in datalist["test"]:
        shutil.copytree(dataset / "studies" / entry["patient"], target / entry["patient"])
    bad = target / "moved_pet"
    shutil.copytree(dataset / "studies" / datalist["training"][0]["patient"], bad)
    new_frame = pydicom.uid.generate_uid()
    for path in (bad / "PT").glob("*.dcm"):
        ds = pydicom.dcmread(path)
        ds.FrameOfReferenceUID = new_frame
        ds.save_as(path)


@pytest.mark.slow
def test_inference_on_a_folder_of_dicom_studies_reports_the_unpaired_one(
    trained_bundle, tiny_dataset, tmp_path, bundle_cli
):
    studies = tmp_path / "studies"
    _study_folder(tiny_dataset, studies)
    out_dir = tmp_path / "out"
    _ok(bundle_cli("inferring", ["train.json", "inference.json"], "--dataset_dir", str(studies), "--bundle_root",
                   str(trained_bundle), "--output_dir", str(out_dir), "--cam_max_slices", "2", *TINY_RUN))  # fmt: skip
    slices = _rows(out_dir / "slices.csv")
    assert len(slices) == 3 * 16 and {r["label"] for r in slices} == {"-1"}  # no masks at inference
    assert all(0.0 <= float(r["probability"]) <= 1.0 for r in slices)
    assert len(_rows(out_dir / "patients.csv")) == 3
    skipped = _rows(out_dir / "skipped.csv")
    assert len(skipped) == 1 and "different Frames of Reference" in skipped[0]["reason"]
    assert "slice" not in json.loads((out_dir / "metrics.json").read_text())  # no labels, no metrics


@pytest.mark.slow
def test_real_nsclc_petct_slab_goes_through_inference(trained_bundle, real_data, tmp_path, bundle_cli):
    slab = real_data / "pet" / "nsclc_radiogenomics_R01-005_petct_slab"
    if not slab.is_dir():
        pytest.skip("NSCLC-Radiogenomics PET/CT slab missing from the real test data")
    out_dir = tmp_path / "real"
    _ok(bundle_cli("inferring", ["train.json", "inference.json"], "--dataset_dir", str(slab), "--bundle_root",
                   str(trained_bundle), "--output_dir", str(out_dir), "--cancer_threshold", "0.0",
                   "--cam_max_slices", "1", *TINY_RUN))  # fmt: skip
    slices = _rows(out_dir / "slices.csv")
    assert len(slices) == 10 and {r["patient"] for r in slices} == {"R01-005"}
    assert _rows(out_dir / "skipped.csv") == []
    heatmap = nib.load(out_dir / "cam" / "R01-005_cam.nii.gz")
    assert heatmap.shape == (512, 512, 10)  # on the CT's own grid, not the 7 mm slice grid
    ct = pydicom.dcmread(sorted((slab / "CT_dicom").glob("*.dcm"))[0], stop_before_pixels=True)
    assert np.allclose(np.abs(np.diag(heatmap.affine))[:2], [float(v) for v in ct.PixelSpacing], atol=1e-4)


@pytest.mark.slow
def test_transfer_learning_from_a_checkpoint_file_with_frozen_stages(tiny_dataset, tmp_path, bundle_cli):
    # a "pre-trained" checkpoint in another trainer's layout: module. prefix, 1000-class head, under state_dict
    donor = _tiny_network(num_classes=1000)
    state = {f"module.{k}": v for k, v in donor.state_dict().items()}
    checkpoint = tmp_path / "pretrained.pth"
    torch.save({"state_dict": state}, checkpoint)
    root = tmp_path / "bundle"
    out = _ok(bundle_cli("training", ["train.json"], "--dataset_dir", str(tiny_dataset), "--bundle_root", str(root),
                         "--epochs", "1", "--samples_per_epoch", "32", "--batch_size", "16", "--pretrained_checkpoint",
                         str(checkpoint), "--freeze_stages", "2", *TINY_RUN))  # fmt: skip
    n_tensors = len(donor.state_dict())
    assert f"loaded {n_tensors - 2} of the network's {n_tensors} tensors" in out
    assert "froze the first 2 of 3 stages" in out
    trained = torch.load(root / "models" / "model.pt", map_location="cpu", weights_only=True)
    for name, value in donor.state_dict().items():
        if name.startswith(("features.0.", "features.1.")):  # frozen: weights and batch-norm statistics kept
            assert torch.equal(trained[name], value), name
    assert not torch.equal(
        trained["features.2.0.conv1.conv.weight"], donor.state_dict()["features.2.0.conv1.conv.weight"]
    )


@pytest.mark.slow
def test_standard_run_creates_the_built_in_data_when_no_dataset_is_given(tmp_path, bundle_cli):
    embedded = dict(TINY_DATA, n_train=3, n_val=3, n_test=0, seed=5)
    _ok(bundle_cli(None, ["train.json"], "--bundle_root", str(tmp_path), "--embedded_data", json.dumps(embedded),
                   "--epochs", "1", "--samples_per_epoch", "16", "--batch_size", "8", *TINY_RUN))  # fmt: skip
    datalist = json.loads((tmp_path / "data" / "petct" / "datalist.json").read_text())
    assert [len(datalist[s]) for s in ("training", "validation")] == [3, 3]
    assert (tmp_path / "models" / "model.pt").is_file()


def test_default_network_reads_cam_from_a_stride_2_map_with_an_exact_head(single_torch_thread):
    # the pointing game needs cells smaller than the tumours: 2 pixels (7.2 mm) on the default 96 x 96 slice
    from monai.bundle import ConfigParser
    from monai.visualize import CAM

    parser = ConfigParser()
    parser.read_config(str(CONFIGS / "train.json"))
    net = parser.get_parsed_content("network_def").eval()
    x = torch.rand(2, parser.get_parsed_content("in_channels"), *parser["spatial_size"])
    with torch.no_grad():
        maps, logits = net.features(x), net(x)
    assert maps.shape[-2:] == (48, 48)
    # no layer between the pooled maps and the linear layer: CAM averaged over the map is the logit
    weighted = torch.einsum("kc,bchw->bkhw", net.fc.weight, maps).mean(dim=(2, 3)) + net.fc.bias
    assert torch.allclose(weighted, logits, atol=1e-4)
    cam = CAM(nn_module=net, target_layers="features", fc_layers="fc")
    assert cam.feature_map_size(x.shape)[-2:] == (48, 48)


def test_missing_weights_bad_checkpoint_and_missing_data_are_reported(tiny_dataset, tmp_path, bundle_cli):
    result = bundle_cli(None, ["train.json", "evaluate.json"], "--dataset_dir", str(tiny_dataset), "--bundle_root",
                        str(tmp_path), *TINY_RUN)  # fmt: skip
    assert result.returncode != 0 and "no trained weights" in result.stdout + result.stderr
    bad = tmp_path / "not_a_checkpoint.pth"
    bad.write_bytes(b"garbage")
    result = bundle_cli("training", ["train.json"], "--dataset_dir", str(tiny_dataset), "--bundle_root", str(tmp_path),
                        "--epochs", "1", "--pretrained_checkpoint", str(bad), *TINY_RUN)  # fmt: skip
    assert result.returncode != 0 and str(bad) in result.stdout + result.stderr
    result = bundle_cli("training", ["train.json"], "--dataset_dir", str(tmp_path / "missing"), "--bundle_root",
                        str(tmp_path), *TINY_RUN)  # fmt: skip
    assert result.returncode != 0 and "datalist not found" in result.stdout + result.stderr


@pytest.mark.slow
def test_two_process_training_under_torchrun(tiny_dataset, tmp_path, bundle_cli):
    result = bundle_cli.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes=1", "--nproc_per_node=2",
         "-m", "monai.bundle", "run", "training", "--config_file", bundle_cli.config_arg(["train.json", "multi_gpu_train.json"]),
         "--dataset_dir", str(tiny_dataset), "--bundle_root", str(tmp_path), "--epochs", "1",
         "--samples_per_epoch", "16", "--batch_size", "8", *TINY_RUN],
        timeout=400,
    )  # fmt: skip
    out = _ok(result)
    assert (tmp_path / "models" / "model.pt").is_file()
    assert "val_auc" in out
