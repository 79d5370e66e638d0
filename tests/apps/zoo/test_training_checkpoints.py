"""Checkpoints the Model Zoo expects from every training run, --resume, and --tracking mlflow (sqlite).

Run on the false-positive-reduction bundle with a tiny network; every bundle's train.json is checked for
the same handlers without running it in tests/bundles/test_training_configs.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lungcad_transforms.apps.detection.phantom_candidates import ensure_fp_dataset

REPO_ROOT = Path(__file__).resolve().parents[3]
CONFIGS = REPO_ROOT / "bundles" / "lung_nodule_ct_fp_reduction" / "configs"
TINY = [
    "--epochs", "1", "--samples_per_epoch", "16", "--batch_size", "8", "--val_interval", "5",
    "--network_def#features", "[4,8,8,8,8]", "--network_def#fc_features", "[16,16]",
]  # fmt: skip

pytestmark = pytest.mark.slow


def _train(root: Path, data: Path, *extra: str, ok: bool = True) -> str:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    command = [sys.executable, "-m", "monai.bundle", "run", "training", "--config_file", str(CONFIGS / "train.json"),
               "--bundle_root", str(root), "--dataset_dir", str(data), *TINY, *extra]  # fmt: skip
    result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    log = result.stdout + result.stderr
    assert (result.returncode == 0) == ok, log[-4000:]
    return log


@pytest.fixture(scope="module")
def fp_data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fp")
    return Path(
        ensure_fp_dataset(
            root / "fp", n_train=1, n_val=1, n_test=1, shape=(72, 72, 48), spacing=(1.5, 1.5, 2.0)
        )
    )


def test_one_epoch_without_a_validation_epoch_writes_final_and_key_metric_checkpoints_then_resumes_tracked(
    fp_data: Path, tmp_path: Path
):
    root = tmp_path / "bundle"
    _train(root, fp_data)  # --epochs 1 --val_interval 5: no validation epoch
    final, best = root / "models" / "model_final.pt", root / "models" / "model.pt"
    assert final.is_file() and best.is_file()  # the final validation ran once, at the end
    state = torch.load(final, weights_only=True)
    assert set(state) == {"model", "optimizer", "lr_scheduler", "trainer"}
    epoch_length = state["trainer"]["epoch_length"]
    assert state["trainer"]["iteration"] == epoch_length  # one epoch
    assert set(torch.load(best, weights_only=True)) == set(state["model"])  # the key-metric one: weights only

    db = tmp_path / "tracking" / "mlruns.db"
    db.parent.mkdir()
    uri = f"sqlite:///{db}"
    log = _train(
        root, fp_data, "--epochs", "2", "--resume", "true", "--tracking", "mlflow", "--tracking_uri", uri
    )
    assert "Restored all variables from" in log and "Epoch[2]" in log and "Epoch[1] Complete" not in log
    state = torch.load(final, weights_only=True)
    assert state["trainer"]["iteration"] == 2 * epoch_length  # continued from epoch 1, not restarted

    import mlflow

    client = mlflow.MlflowClient(tracking_uri=uri)
    runs = client.search_runs([client.get_experiment_by_name("lung_nodule_ct_fp_reduction").experiment_id])
    assert len(runs) == 1, "trainer, validator and the model artefact share one run"
    run = runs[0]
    assert run.data.params["max_epochs"] == "2" and float(run.data.params["learning_rate"]) > 0
    assert {"train_loss", "val_cpm", "val_auc"} <= set(run.data.metrics)
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"model_final.pt", "model.pt"} <= artifacts and any(a.endswith(".json") for a in artifacts)


def test_resume_without_a_checkpoint_says_how_to_get_one(fp_data: Path, tmp_path: Path):
    log = _train(tmp_path / "empty", fp_data, "--resume", "true", ok=False)
    assert "model_final.pt" in log and "no trained weights" in log
    assert not (tmp_path / "empty" / "models" / "model.pt").exists()
