"""The nodule-segmentation bundle run the way a user runs it: ``python -m monai.bundle run ...`` in a subprocess.

Every run writes into a temporary bundle root (``--bundle_root``) and reads a tiny synthetic dataset, with
32^3 patches and one epoch, so each command takes seconds.
"""

from __future__ import annotations

import csv
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from lungcad_transforms.apps.phantoms.dataset import ensure_phantom_dataset

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIGS = REPO_ROOT / "bundles" / "lung_nodule_ct_segmentation" / "configs"
TINY = ["--patch_size", "[32,32,32]", "--num_samples", "1"]

pytestmark = pytest.mark.slow


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "2")
    return env


def _bundle(*args: str, timeout: int = 240) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "monai.bundle", "run", *args]
    return subprocess.run(command, cwd=REPO_ROOT, env=_env(), capture_output=True, text=True, timeout=timeout)


def _overlay(name: str) -> str:
    """``--config_file`` for ``train.json`` with the overlay ``name`` on top (the bundle's other workflows)."""
    return f"['{CONFIGS / 'train.json'}','{CONFIGS / name}']"


def _ok(result: subprocess.CompletedProcess) -> str:
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    return log


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory) -> Path:
    # two validation cases, so that the two-process run gives each process one
    root = tmp_path_factory.mktemp("phantoms") / "tiny"
    return Path(ensure_phantom_dataset(root, n_train=2, n_val=2, n_test=1, shape=(64, 64, 48)))


@pytest.fixture(scope="module")
def trained_bundle(tmp_path_factory, tiny_dataset: Path) -> Path:
    """A bundle root holding models/model.pt after one tiny epoch of `run training`."""
    root = tmp_path_factory.mktemp("bundle")
    log = _ok(
        _bundle(
            "training", "--config_file", str(CONFIGS / "train.json"), "--bundle_root", str(root),
            "--dataset_dir", str(tiny_dataset), "--epochs", "1", "--val_interval", "1", *TINY,
        )
    )  # fmt: skip
    assert "val_mean_dice" in log
    assert not (root / "data" / "embedded").exists()  # a dataset_dir given: no built-in data written
    return root


def test_train_run_training_writes_checkpoint(trained_bundle: Path):
    checkpoint = trained_bundle / "models" / "model.pt"
    state = torch.load(checkpoint, weights_only=True)
    assert "model.0.conv.unit0.conv.weight" in state  # a MONAI UNet state dict, no DDP prefix
    assert state["model.0.conv.unit0.conv.weight"].shape == (16, 1, 3, 3, 3)
    assert any(p.name.startswith("events.out.tfevents") for p in (trained_bundle / "eval").iterdir())


def test_pretrain_then_default_run_id_finetunes(tmp_path: Path, tiny_dataset: Path):
    # `run` without a run id executes the "run" expressions of the config: SimCLR pre-training here ...
    log = _ok(
        _bundle(
            "--config_file", _overlay("pretrain.json"), "--bundle_root", str(tmp_path),
            "--dataset_dir", str(tiny_dataset), "--epochs", "1", "--num_samples", "2",
            "--patch_size", "[32,32,32]", "--view_size", "[24,24,24]",
        )
    )  # fmt: skip
    encoder = tmp_path / "models" / "pretrained_encoder.pt"
    assert encoder.is_file(), log[-2000:]
    assert any(k.startswith("head.") for k in torch.load(encoder, weights_only=True))
    # ... and training from the pre-trained encoder
    log = _ok(
        _bundle(
            "--config_file", str(CONFIGS / "train.json"), "--bundle_root", str(tmp_path),
            "--dataset_dir", str(tiny_dataset), "--epochs", "1", "--val_interval", "1",
            "--pretrained_encoder", str(encoder), *TINY,
        )
    )  # fmt: skip
    assert "loaded 72 of 72 encoder tensors" in log
    assert (tmp_path / "models" / "model.pt").is_file()


def test_evaluate_writes_dice_and_detection_figures(tmp_path: Path, trained_bundle: Path, tiny_dataset: Path):
    root = tmp_path / "bundle"
    shutil.copytree(trained_bundle / "models", root / "models")
    config = _overlay("evaluate.json")
    _ok(
        _bundle(
            "--config_file", config, "--bundle_root", str(root), "--dataset_dir", str(tiny_dataset), *TINY
        )
    )
    metrics = json.loads((root / "eval" / "metrics.json").read_text())
    test_uids = [e["seriesuid"] for e in json.loads((tiny_dataset / "datalist.json").read_text())["test"]]
    assert metrics["n_scans"] == 1 and list(metrics["val_mean_dice_per_scan"]) == test_uids
    assert 0.0 <= metrics["val_mean_dice"] <= 1.0
    assert metrics["n_nodules"] >= 1 and 0.0 <= metrics["candidate_sensitivity"] <= 1.0
    assert metrics["fp_per_scan"] == metrics["false_positives"] / 1
    assert set(metrics["froc_sensitivities"]) == {"0.125", "0.25", "0.5", "1", "2", "4", "8"}
    assert metrics["cpm"] == pytest.approx(np.mean(list(metrics["froc_sensitivities"].values())))
    assert (root / "eval" / "froc.png").is_file()
    with open(root / "eval" / "candidates.csv", newline="") as handle:
        header = next(csv.reader(handle))
    assert header[:6] == ["seriesuid", "coordX", "coordY", "coordZ", "probability", "diameter_mm"]


def _inference_folder(folder: Path) -> tuple[Path, str]:
    """A folder as users have them: a CT DICOM series two levels down, a broken file, a CT without lungs."""
    from lungcad_transforms.apps.phantoms.ct import make_ct_phantom
    from lungcad_transforms.data.dicom_writer import write_dicom_series
    from lungcad_transforms.data.image_writer import write_nifti

    chest = make_ct_phantom((64, 64, 48), seed=11)
    series = write_dicom_series(
        chest.hu,
        chest.spacing,
        chest.origin_lps,
        folder / "patient01" / "ct",
        "CT",
        seriesuid=chest.seriesuid,
    )
    (folder / "broken.nii.gz").write_bytes(b"\x1f\x8b\x08 truncated download")
    abdomen = make_ct_phantom((48, 48, 24), seed=3, lungs=False)
    write_nifti(abdomen.hu, abdomen.spacing, abdomen.origin_lps, folder / "abdomen" / "abdomen.nii.gz")
    return series, chest.seriesuid


def test_inference_on_folder_skips_bad_scans(tmp_path: Path, trained_bundle: Path):
    from lungcad_transforms.data.image_reader import load_image

    series, uid = _inference_folder(tmp_path / "in")
    out = tmp_path / "out"
    log = _ok(
        _bundle(
            "--config_file", _overlay("inference.json"), "--bundle_root", str(trained_bundle),
            "--dataset_dir", str(tmp_path / "in"), "--output_dir", str(out), "--patch_size", "[32,32,32]",
        )
    )  # fmt: skip
    assert "skipping scan" in log and "broken.nii.gz" in log and "no lungs found" in log
    ct = load_image(str(series))
    for postfix in ("prob", "mask"):
        result = load_image(str(out / uid / f"{uid}_{postfix}.nii.gz"))
        assert result.shape == ct.shape
        assert np.allclose(result.affine, ct.affine, atol=1e-4)  # lines up with the input in world space
    mask = load_image(str(out / uid / f"{uid}_mask.nii.gz"))
    assert set(np.unique(mask.numpy()).tolist()) <= {0.0, 1.0}
    with open(out / "candidates.csv", newline="") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
    assert reader.fieldnames[:6] == ["seriesuid", "coordX", "coordY", "coordZ", "probability", "diameter_mm"]
    assert all(r["seriesuid"] == uid for r in rows)
    summary = json.loads((out / "metrics.json").read_text())
    assert summary["n_scans"] == 1
    skipped = {Path(s["scan"]).name: s["reason"] for s in summary["skipped_scans"]}
    assert set(skipped) == {"broken.nii.gz", "abdomen.nii.gz"}
    assert "no lungs" in skipped["abdomen.nii.gz"]
    assert not list(out.rglob(".*"))  # no temporary files left behind


def test_inference_without_weights_says_how_to_train(tmp_path: Path):
    folder = tmp_path / "in"
    folder.mkdir()
    result = _bundle(
        "--config_file", _overlay("inference.json"), "--bundle_root", str(tmp_path / "empty_bundle"),
        "--dataset_dir", str(folder), "--output_dir", str(tmp_path / "out"),
    )  # fmt: skip
    log = result.stdout + result.stderr
    assert result.returncode != 0
    assert "no trained weights" in log and "monai.bundle run training" in log and "model.pt" in log
    assert not (tmp_path / "out").exists()


def test_two_process_torchrun_on_cpu(tmp_path: Path, tiny_dataset: Path):
    config = _overlay("multi_gpu_train.json")
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes=1", "--nproc_per_node=2",
        "-m", "monai.bundle", "run", "--config_file", config, "--bundle_root", str(tmp_path),
        "--dataset_dir", str(tiny_dataset), "--epochs", "1", "--val_interval", "1", *TINY,
    ]  # fmt: skip
    env = _env()
    env["OMP_NUM_THREADS"] = "1"
    result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=240)
    log = _ok(result)
    assert "val_mean_dice" in log
    state = torch.load(tmp_path / "models" / "model.pt", weights_only=True)
    assert not any(k.startswith("module.") for k in state)


def _ensure(root: str) -> str:
    return ensure_phantom_dataset(root, n_train=1, n_val=1, n_test=0, shape=(48, 48, 24))


def test_embedded_dataset_created_once_under_concurrency(tmp_path: Path):
    root = str(tmp_path / "phantoms")
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        assert pool.map(_ensure, [root, root]) == [root, root]
    datalist = json.loads((tmp_path / "phantoms" / "datalist.json").read_text())
    assert len(datalist["training"]) == 1 and len(datalist["validation"]) == 1
    before = (tmp_path / "phantoms" / "datalist.json").stat().st_mtime_ns
    assert _ensure(root) == root
    assert (tmp_path / "phantoms" / "datalist.json").stat().st_mtime_ns == before  # reused, not rewritten
    # a folder with other content is never overwritten by the synthetic data
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "scan.nii.gz").write_bytes(b"")
    from lungcad_transforms.errors import InputError

    with pytest.raises(InputError, match="no synthetic dataset"):
        _ensure(str(tmp_path / "mine"))


def test_simclr_encoder_loads_into_segmentation_unet(tmp_path: Path):
    from monai.networks.nets import UNet

    from lungcad_transforms.errors import InputError
    from lungcad_transforms.networks.nets.unet_simclr import (
        TwoViewContrastiveLoss,
        UNetSimCLR,
        load_pretrained_encoder,
        prepare_two_view_batch,
    )

    simclr = UNetSimCLR(channels=(8, 16, 32), strides=(2, 2), num_res_units=1)
    views, targets = prepare_two_view_batch(
        {"image": torch.rand(3, 1, 24, 24, 24), "image_2": torch.rand(3, 1, 24, 24, 24)}
    )
    assert views.shape == (6, 1, 24, 24, 24) and targets is None
    embeddings = simclr(views)
    assert embeddings.shape == (6, 128)
    loss = TwoViewContrastiveLoss()(embeddings)
    loss.backward()
    assert torch.isfinite(loss) and simclr.model[0].conv.unit0.conv.weight.grad is not None

    path = tmp_path / "encoder.pt"
    torch.save(simclr.state_dict(), path)
    unet = UNet(3, 1, 1, channels=(8, 16, 32), strides=(2, 2), num_res_units=1)
    decoder_before = unet.model[2][0].conv.weight.clone()
    loaded = load_pretrained_encoder(unet, path)
    assert loaded and all(not name.startswith("head.") for name in loaded)
    assert torch.equal(unet.model[0].conv.unit0.conv.weight, simclr.model[0].conv.unit0.conv.weight)
    assert torch.equal(unet.model[2][0].conv.weight, decoder_before)  # the decoder is left alone

    with pytest.raises(InputError, match="not found"):
        load_pretrained_encoder(unet, tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="cannot be read"):
        load_pretrained_encoder(unet, tmp_path / "junk.pt")
    wider = UNet(3, 1, 1, channels=(12, 24, 48), strides=(2, 2), num_res_units=1)
    with pytest.raises(InputError, match="shares no encoder parameter"):
        load_pretrained_encoder(wider, path)


def test_embedded_default_trains_on_phantoms_and_real_scans_with_synthetic_nodules(
    tmp_path: Path, real_data: Path
):
    root = tmp_path / "bundle"
    log = _ok(
        _bundle(
            "training", "--config_file", str(CONFIGS / "train.json"), "--bundle_root", str(root),
            "--epochs", "1", "--val_interval", "1", *TINY,
            "--embedded_data", "{'n_train': 1, 'n_val': 1, 'n_test': 1, 'shape': [64, 64, 48]}",
            "--embedded_hybrid", "{'cases_per_background': 2, 'window_mm': [None, None, 48.0], "
            "'test_backgrounds': ['LIDC-IDRI'], 'seed': 0}",
            timeout=600,
        )
    )  # fmt: skip
    assert "val_mean_dice" in log and (root / "models" / "model.pt").is_file()
    datalist = json.loads((root / "data" / "embedded" / "datalist.json").read_text())
    sources = {split: {e["source"] for e in entries} for split, entries in datalist.items()}
    # trained on both; the real test scans (the LIDC slabs) never give a training case
    assert sources["training"] == {"phantoms", "hybrid"}
    hybrid = json.loads((root / "data" / "embedded" / "hybrid" / "hybrid_dataset.json").read_text())
    assert hybrid["backgrounds"]["training"] == ["C3N-00247_chest_ct_B70f"]
    assert len(hybrid["backgrounds"]["test"]) == 2
