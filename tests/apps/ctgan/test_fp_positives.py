"""GAN positives for the FP-reduction bundle: the injected patches, and its gan_augment key end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lungcad_transforms.apps.ctgan.fp_positives import GAN_POSITIVES_FILE, ensure_gan_positives
from lungcad_transforms.data.tables import read_annotations
from lungcad_transforms.errors import InputError

REPO = Path(__file__).resolve().parents[3]
FP_CONFIGS = REPO / "bundles" / "lung_nodule_ct_fp_reduction" / "configs"
TINY_FP = dict(n_train=2, n_val=1, n_test=1, shape=(80, 80, 56), spacing=(1.5, 1.5, 2.0), seed=7)
TINY_SMALL3DCNN = ["--network_def#channels", "[4,8,8]", "--network_def#fc_features", "[16,8]"]
GEOMETRY = dict(
    scales_mm=((20.0, 20.0, 12.0), (30.0, 30.0, 18.0), (40.0, 40.0, 24.0)), patch_size=(20, 20, 12)
)


@pytest.fixture(scope="module")
def fp_dataset(tmp_path_factory) -> Path:
    from lungcad_transforms.apps.detection import ensure_fp_dataset

    return Path(ensure_fp_dataset(tmp_path_factory.mktemp("fp") / "phantoms", **TINY_FP))


@pytest.fixture(scope="module")
def positives(fp_dataset, tiny_gan_bundle, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("gan") / "positives"
    return Path(ensure_gan_positives(out, fp_dataset / "datalist.json", fp_dataset / "annotations.csv",
                                     bundle_dir=tiny_gan_bundle, per_scan=2, margin_mm=6.0, **GEOMETRY))  # fmt: skip


def test_gan_positives_are_patches_of_injected_scans_clear_of_real_nodules(positives, fp_dataset):
    from lungcad_transforms.data.coords import world_to_voxel
    from lungcad_transforms.data.datasets import resolve_scans
    from lungcad_transforms.data.image_reader import load_image
    from lungcad_transforms.transforms.spatial.functional import extract_multiscale_patches

    listing = json.loads(positives.read_text())
    scans = {s["seriesuid"]: s for s in resolve_scans(fp_dataset / "datalist.json", split="training")}
    assert {e["seriesuid"] for e in listing["training"]} == set(scans)  # one patch file per training scan
    injected = read_annotations(positives.parent / "injected.csv")
    annotated = read_annotations(fp_dataset / "annotations.csv")
    assert len(injected) == 2 * len(scans)
    for entry in listing["training"]:
        with np.load(positives.parent / entry["patches"]) as z:
            patches = [z[f"patch_s{s}"] for s in (1, 2, 3)]
        assert all(p.shape == (2, 20, 20, 12) and 0 <= p.min() and p.max() <= 1 for p in patches)
        rows = [r for r in injected if r["seriesuid"] == entry["seriesuid"]]
        ct = load_image(scans[entry["seriesuid"]])
        centres = np.array([[float(r[k]) for k in ("coordX", "coordY", "coordZ")] for r in rows])
        before, _ = extract_multiscale_patches(ct, ct.affine.numpy(), world_to_voxel(centres, ct.affine.numpy()),
                                               **GEOMETRY)  # fmt: skip
        # the patch centre was edited, its far corners (outside the 16 mm box at the widest scale) were not
        assert np.all(
            np.abs(patches[0][:, 8:12, 8:12, 4:8] - before[:, 0, 8:12, 8:12, 4:8]).max(axis=(1, 2, 3)) > 0
        )
        assert np.array_equal(patches[2][:, 0, 0, 0], before[:, 2, 0, 0, 0].astype(np.float32))
        for r, c in zip(rows, centres, strict=True):
            assert 4.0 <= float(r["diameter_mm"]) <= 12.0
            for a in annotated:
                if a["seriesuid"] == entry["seriesuid"]:
                    gap = np.linalg.norm(c - [a["coordX"], a["coordY"], a["coordZ"]])
                    assert (
                        gap >= 8 * np.sqrt(3) + a["diameter_mm"] / 2
                    )  # the edited box misses the real nodule


def test_gan_positives_are_kept_while_settings_hold_and_remade_when_they_change(positives, fp_dataset,
                                                                                tiny_gan_bundle):  # fmt: skip
    stamp = positives.stat().st_mtime_ns
    args = (positives.parent, fp_dataset / "datalist.json", fp_dataset / "annotations.csv")
    again = ensure_gan_positives(*args, bundle_dir=tiny_gan_bundle, per_scan=2, margin_mm=6.0, **GEOMETRY)
    assert Path(again).stat().st_mtime_ns == stamp
    other = ensure_gan_positives(*args, bundle_dir=tiny_gan_bundle, per_scan=1, margin_mm=6.0, **GEOMETRY)
    assert len(read_annotations(Path(other).parent / "injected.csv")) == 2  # one per scan now
    with pytest.raises(InputError, match="no trained injector weights"):
        ensure_gan_positives(positives.parent.parent / "x", fp_dataset / "datalist.json",
                             bundle_dir=positives.parent.parent / "no_bundle")  # fmt: skip


def test_one_key_switches_gan_positives_on_in_the_fp_training_set(fp_dataset, tiny_gan_bundle, tmp_path):
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(str(FP_CONFIGS / "train.json"))
    # "false" as the command line gives it (python-fire keeps lowercase words as strings) is off, as the default
    parser.update({"dataset_dir": str(fp_dataset), "bundle_root": str(tmp_path), "gan_augment": "false"})
    assert parser.get_parsed_content("extra_positives") is None  # off: no GAN positive made
    assert parser.get_parsed_content("initialize")[-1] is None
    assert not (tmp_path / "data" / "gan_positives").exists()
    parser = ConfigParser()
    parser.read_config(str(FP_CONFIGS / "train.json"))
    parser.update({"dataset_dir": str(fp_dataset), "bundle_root": str(tmp_path), "gan_augment": "true",
                   "gan_bundle_dir": str(tiny_gan_bundle), "gan_positives#margin_mm": 6.0,
                   "gan_positives#per_scan": 2})  # fmt: skip
    listing = str(tmp_path / "data" / "gan_positives" / GAN_POSITIVES_FILE)
    assert parser.get_parsed_content("initialize")[-1] == listing  # initialize makes the GAN positives
    assert parser.get_parsed_content("extra_positives") == listing and Path(listing).is_file()
    dataset = parser.get_parsed_content("train#dataset")
    synthetic = [r for r in dataset.records if r["synthetic"]]
    assert len(synthetic) == 4 and all(r["class"] == 1 for r in synthetic)
    real = [r for r in dataset.records if not r["synthetic"]]
    assert {int(r["class"]) for r in real} == {0, 1}


@pytest.mark.slow
def test_fp_training_with_gan_positives_runs_end_to_end(fp_dataset, tiny_gan_bundle, tmp_path):
    files = "['" + "','".join(str(FP_CONFIGS / c) for c in ("train.json", "small3dcnn.json")) + "']"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    result = subprocess.run(
        [sys.executable, "-m", "monai.bundle", "run", "training", "--config_file", files, "--dataset_dir",
         str(fp_dataset), "--bundle_root", str(tmp_path), "--gan_augment", "true", "--gan_bundle_dir", str(tiny_gan_bundle),
         "--gan_positives#margin_mm", "6.0", "--epochs", "1", "--samples_per_epoch", "32", "--batch_size", "16",
         "--val_interval", "1", *TINY_SMALL3DCNN],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (tmp_path / "models" / "small3dcnn" / "model.pt").is_file()
    listing = json.loads((tmp_path / "data" / "gan_positives" / GAN_POSITIVES_FILE).read_text())
    assert len(listing["training"]) == 2 and listing["settings"]["per_scan"] == 3
