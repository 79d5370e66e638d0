"""`lungcad export-bundle`: every exported bundle runs with MONAI alone, from inside its own folder.

The exports of all five bundles run `python -m monai.bundle` with the installed lungcad_transforms made
unimportable (training one tiny epoch, then inference on what a user gives); the CT-GAN
bundle goes through a zip and `lungcad import-bundle`, and its imported weights are checked against the
export's large_files.yml (a tampered copy is refused).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lungcad_transforms.apps.ctgan.cube_dataset import ensure_ctgan_dataset
from lungcad_transforms.apps.detection.phantom_candidates import ensure_fp_dataset
from lungcad_transforms.apps.mrpet.phantom_pairs import ensure_mrpet_dataset
from lungcad_transforms.apps.petct.phantom_studies import ensure_petct_dataset
from lungcad_transforms.apps.phantoms.dataset import ensure_phantom_dataset

REPO_ROOT = Path(__file__).resolve().parents[3]

pytestmark = pytest.mark.slow

# runs `python -m monai.bundle ...` with the installed lungcad_transforms made unimportable, so that the
# run proves the export carries all the code it needs
_BUNDLE_WITHOUT_LUNGCAD = """
import runpy, sys
class NoLungcad:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "lungcad_transforms":
            raise ImportError("the installed " + name + " is hidden in this test")
sys.meta_path.insert(0, NoLungcad())
sys.argv = ["monai.bundle", *sys.argv[1:]]
runpy.run_module("monai.bundle", run_name="__main__")
"""


def _export(bundle: str | Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    command = [
        sys.executable,
        "-m",
        "lungcad_transforms.cli",
        "export-bundle",
        str(bundle),
        "--out",
        str(out),
        *extra,
    ]
    return subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)


def _run_exported(root: Path, *args: str, ok: bool = True) -> str:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    result = subprocess.run(
        [sys.executable, "-c", _BUNDLE_WITHOUT_LUNGCAD, "run", *args],
        cwd=root, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    log = result.stdout + result.stderr
    assert (result.returncode == 0) == ok, log[-4000:]
    return log


def _unvendored_references(root: Path) -> list[str]:
    pattern = re.compile(r"(?<![\w.])lungcad_transforms\b")
    return [
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.suffix in (".py", ".json") and pattern.search(p.read_text(encoding="utf-8"))
    ]


def test_exported_segmentation_bundle_trains_and_infers_without_the_package(tmp_path: Path):
    out = tmp_path / "lung_nodule_ct_segmentation"
    result = _export("lung_nodule_ct_segmentation", out, "--no-weights")
    assert result.returncode == 0, result.stderr
    vendored = out / "scripts" / "lungcad_transforms"
    assert (vendored / "transforms" / "lung" / "array.py").is_file()
    # only what the bundle's configs reach: no LIDC preparation, no false-positive-reduction network (the
    # embedded-data module it shares with the FP bundle reaches apps/detection, so that one comes along)
    assert not (vendored / "apps" / "lidc").exists() and not (vendored / "apps" / "petct").exists()
    assert not (vendored / "networks" / "nets" / "mgicnn.py").exists()
    assert (vendored / "networks" / "nets" / "unet_simclr.py").is_file()
    assert (vendored / "__init__.py").is_file() and (vendored / "networks" / "__init__.py").is_file()
    assert not list((out / "models").glob("*.pt")) and (out / "models" / "README.md").is_file()
    assert not (out / "data").exists() and not (out / "eval").exists()
    assert _unvendored_references(out) == []
    train = json.loads((out / "configs" / "train.json").read_text())
    assert train["bundle_root"] == "." and "$import scripts.lungcad_transforms" in train["imports"]
    assert (
        "lungcad"
        not in json.loads((out / "configs" / "metadata.json").read_text())["required_packages_version"]
    )

    data = Path(ensure_phantom_dataset(tmp_path / "tiny", n_train=1, n_val=1, n_test=1, shape=(64, 64, 48)))
    _run_exported(
        out, "training", "--config_file", "configs/train.json", "--dataset_dir", str(data),
        "--epochs", "1", "--val_interval", "1", "--patch_size", "[32,32,32]", "--num_samples", "1",
    )  # fmt: skip
    assert (out / "models" / "model.pt").is_file()  # bundle_root "." is the exported folder
    datalist = json.loads((data / "datalist.json").read_text())
    scans = tmp_path / "scans"
    scans.mkdir()
    (scans / "case.nii.gz").symlink_to(data / datalist["test"][0]["image"])
    _run_exported(
        out, "--config_file", "['configs/train.json','configs/inference.json']", "--dataset_dir", str(scans),
        "--output_dir", str(tmp_path / "pred"),
    )  # fmt: skip
    assert (tmp_path / "pred" / "candidates.csv").is_file()
    assert len(list((tmp_path / "pred").rglob("*_prob.nii.gz"))) == 1


def test_exported_fp_reduction_bundle_trains_and_infers_without_the_package(tmp_path: Path):
    out = tmp_path / "lung_nodule_ct_fp_reduction"
    assert _export("lung_nodule_ct_fp_reduction", out, "--no-weights").returncode == 0
    assert _unvendored_references(out) == []
    vendored = out / "scripts" / "lungcad_transforms"
    assert (vendored / "networks" / "nets" / "small3dcnn.py").is_file()  # named by configs/small3dcnn.json
    assert not (vendored / "networks" / "nets" / "unet_simclr.py").exists()
    assert not (vendored / "apps" / "lidc").exists()
    data = Path(
        ensure_fp_dataset(
            tmp_path / "fp", n_train=1, n_val=1, n_test=1, shape=(72, 72, 48), spacing=(1.5, 1.5, 2.0)
        )
    )
    _run_exported(
        out, "training", "--config_file", "configs/train.json", "--dataset_dir", str(data),
        "--epochs", "1", "--samples_per_epoch", "16", "--batch_size", "8", "--val_interval", "1",
        "--network_def#features", "[4,8,8,8,8]", "--network_def#fc_features", "[16,16]",
    )  # fmt: skip
    assert (out / "models" / "model.pt").is_file() and (out / "models" / "model_final.pt").is_file()
    _run_exported(
        out, "--config_file", "['configs/train.json','configs/inference.json']",
        "--dataset_dir", str(data / "images" / "test"), "--candidates_file", str(data / "candidates_test.csv"),
        "--output_dir", str(tmp_path / "pred"), "--network_def#features", "[4,8,8,8,8]",
        "--network_def#fc_features", "[16,16]", "--gradcam_max_candidates", "1",
    )  # fmt: skip
    assert list((tmp_path / "pred").glob("*.csv"))


def test_exported_petct_bundle_trains_and_infers_on_dicom_studies_without_the_package(tmp_path: Path):
    out = tmp_path / "lung_petct_classification"
    assert _export("lung_petct_classification", out, "--no-weights").returncode == 0
    assert _unvendored_references(out) == []
    data = Path(ensure_petct_dataset(tmp_path / "petct", n_train=2, n_val=2, n_test=2, ct_shape=(48, 48, 16),
                                     ct_spacing=(7.0, 7.0, 7.5), pet_shape=(24, 24, 8)))  # fmt: skip
    tiny = ["--pixdim", "[7.0,7.0]", "--spatial_size", "[48,48]", "--min_lesion_pixels", "1",
            "--net_kwargs", json.dumps({"channels": [4, 8, 8], "blocks": [1, 1]})]  # fmt: skip
    _run_exported(out, "training", "--config_file", "configs/train.json", "--dataset_dir", str(data),
                  "--epochs", "1", "--samples_per_epoch", "16", "--batch_size", "8", *tiny)  # fmt: skip
    assert (out / "models" / "model.pt").is_file() and (out / "models" / "model_final.pt").is_file()
    log = _run_exported(out, "training", "--config_file", "configs/train.json", "--dataset_dir", str(data),
                        "--epochs", "2", "--samples_per_epoch", "16", "--batch_size", "8", "--resume", "true", *tiny)  # fmt: skip
    assert "Restored all variables from" in log  # continued from model_final.pt
    progress = torch.load(out / "models" / "model_final.pt", weights_only=True)["trainer"]
    assert progress["iteration"] == 2 * progress["epoch_length"]  # epoch 2 ran on from epoch 1
    studies = tmp_path / "studies"  # DICOM CT + PET studies, as a user's PACS export
    for entry in json.loads((data / "datalist.json").read_text())["test"]:
        shutil.copytree(data / "studies" / entry["patient"], studies / entry["patient"])
    _run_exported(out, "inferring", "--config_file", "['configs/train.json','configs/inference.json']",
                  "--dataset_dir", str(studies), "--output_dir", str(tmp_path / "pred"), "--cam_max_slices", "1",
                  *tiny)  # fmt: skip
    patients = (tmp_path / "pred" / "patients.csv").read_text().splitlines()
    assert len(patients) == 1 + 2 and (tmp_path / "pred" / "slices.csv").is_file()


def test_exported_mrpet_bundle_trains_and_infers_with_registration_without_the_package(tmp_path: Path):
    pytest.importorskip("itk")
    out = tmp_path / "chest_mr_pet_fusion_classification"
    assert _export("chest_mr_pet_fusion_classification", out, "--no-weights").returncode == 0
    assert _unvendored_references(out) == []
    data = Path(ensure_mrpet_dataset(tmp_path / "mrpet", n_train=2, n_val=2, n_test=2, n_misaligned=1,
                                     mr_shape=(48, 48, 12), mr_spacing=(6.0, 6.0, 8.0), pet_shape=(24, 24, 12),
                                     seed=77))  # fmt: skip
    tiny = {"input_spacing": [6.0, 6.0], "input_size": [48, 48], "crop_size": [40, 40], "epochs": 1,
            "batch_size": 16, "network_def#block_inplanes": [4, 8, 16, 32], "gradcam_patients": 1}  # fmt: skip
    tiny_cli = [arg for k, v in tiny.items() for arg in (f"--{k}", json.dumps(v))]
    _run_exported(out, "training", "--config_file", "configs/train.json", "--dataset_dir", str(data),
                  "--mode", "mr_pet", *tiny_cli)  # fmt: skip
    assert (out / "models" / "model_mr_pet.pt").is_file()
    _run_exported(out, "--config_file", "['configs/train.json','configs/inference.json']", "--mode", "mr_pet",
                  "--input_dir", str(data / "studies"), *tiny_cli)  # fmt: skip
    result = out / "eval" / "inference" / "mr_pet"
    moved = json.loads((data / "datalist.json").read_text())["misaligned"][0]["patient"]
    # the misaligned pair went through the vendored ITK-Elastix registration
    assert json.loads((result / "registration" / f"{moved}.json").read_text())["method"] == "rigid"
    assert len((result / "patients.csv").read_text().splitlines()) > 1


def _gan_source_with_weights(tmp_path: Path) -> Path:
    """The CT-GAN bundle's tracked files with untrained injector and remover weights of its own network."""
    from monai.bundle import ConfigParser

    src, dst = REPO_ROOT / "bundles" / "lung_nodule_ct_gan", tmp_path / "src" / "lung_nodule_ct_gan"
    for name in ("configs", "docs"):
        shutil.copytree(src / name, dst / name)
    shutil.copy2(src / "LICENSE", dst / "LICENSE")
    (dst / "models").mkdir()
    parser = ConfigParser()
    parser.read_config(str(src / "configs" / "train.json"))
    for key, value in TINY_GAN.items():
        parser[key] = value
    (dst / "models" / "injector_network.json").write_text(json.dumps(TINY_GAN))
    (dst / "models" / "remover_network.json").write_text(json.dumps(TINY_GAN))
    for task in ("injector", "remover"):
        torch.manual_seed(0)
        torch.save(
            {"generator": parser.get_parsed_content("generator_def").state_dict()},
            dst / "models" / f"{task}.pt",
        )
    return dst


TINY_GAN = {"generator_channels": [4, 8, 16], "generator_strides": [2, 2]}


def test_exported_ctgan_bundle_zip_imports_and_edits_without_the_package(tmp_path: Path):
    source = _gan_source_with_weights(tmp_path)
    result = _export(source, tmp_path / "dist" / "ctgan.zip", "--zip")
    assert result.returncode == 0, result.stderr
    result = subprocess.run(
        [sys.executable, "-m", "lungcad_transforms.cli", "import-bundle", str(tmp_path / "dist" / "ctgan.zip"),
         "--into", str(tmp_path / "imported")], capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = tmp_path / "imported" / "lung_nodule_ct_gan"
    assert _unvendored_references(out) == [] and (out / "large_files.yml").is_file()
    assert not (out / "scripts" / "lungcad_transforms" / "networks" / "nets" / "mgicnn.py").exists()
    data = Path(ensure_ctgan_dataset(tmp_path / "ctgan", **TINY_CTGAN_DATA))
    edit = [
        "--config_file", "['configs/train.json','configs/inference.json']",
        "--dataset_dir", str(data / "images" / "validation"), "--edits_file", str(data / "annotations.csv"),
    ]  # fmt: skip
    _run_exported(out, *edit, "--output_dir", str(tmp_path / "edited"))
    assert list((tmp_path / "edited").glob("*.nii.gz")) and (tmp_path / "edited" / "edits.csv").is_file()
    # weights that differ from the export's large_files.yml are refused before they are loaded
    for task in ("injector", "remover"):
        weights = out / "models" / f"{task}.pt"
        raw = bytearray(weights.read_bytes())
        raw[len(raw) // 2] ^= 0xFF  # one byte changed, the size kept
        weights.write_bytes(bytes(raw))
    log = _run_exported(out, *edit, "--output_dir", str(tmp_path / "tampered"), ok=False)
    assert "SHA-256 differs from the large_files.yml entry" in log


TINY_CTGAN_DATA = dict(
    n_train=1, n_val=1, shape=(80, 80, 56), spacing=(1.2, 1.2, 1.5), seed=11, remover_per_scan=2
)


def test_export_refuses_a_non_bundle_and_an_existing_output(tmp_path: Path):
    result = _export("no_such_bundle", tmp_path / "x")
    assert result.returncode == 2 and "no_such_bundle" in result.stderr and "not a bundle" in result.stderr
    assert not (tmp_path / "x").exists()
    (tmp_path / "taken").mkdir()
    result = _export("lung_nodule_ct_segmentation", tmp_path / "taken")
    assert result.returncode == 2 and "exists already" in result.stderr
    assert list((tmp_path / "taken").iterdir()) == []  # left as it was
