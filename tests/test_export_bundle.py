"""scripts/export_bundle.py: an exported bundle runs with MONAI alone, from inside its own folder."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from lungcad_transforms.apps.detection.phantom_candidates import ensure_fp_dataset
from lungcad_transforms.apps.phantoms.dataset import ensure_phantom_dataset

REPO_ROOT = Path(__file__).resolve().parents[1]
EXPORT = REPO_ROOT / "scripts" / "export_bundle.py"

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


def _export(bundle: str, out: Path, *extra: str) -> subprocess.CompletedProcess:
    command = [sys.executable, str(EXPORT), str(REPO_ROOT / "bundles" / bundle), "--out", str(out), *extra]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def _run_exported(root: Path, *args: str) -> str:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    result = subprocess.run(
        [sys.executable, "-c", _BUNDLE_WITHOUT_LUNGCAD, "run", *args],
        cwd=root, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
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
    # only what the bundle's configs reach: no LIDC preparation, no false-positive-reduction network
    assert not (vendored / "apps" / "lidc").exists() and not (vendored / "apps" / "detection").exists()
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


def test_exported_fp_reduction_bundle_trains_without_the_package(tmp_path: Path):
    out = tmp_path / "lung_nodule_ct_fp_reduction"
    assert _export("lung_nodule_ct_fp_reduction", out, "--no-weights").returncode == 0
    assert _unvendored_references(out) == []
    vendored = out / "scripts" / "lungcad_transforms"
    assert (vendored / "networks" / "nets" / "small3dcnn.py").is_file()  # named by configs/small3dcnn.json
    assert not (vendored / "networks" / "nets" / "unet_simclr.py").exists()
    assert not (vendored / "apps" / "lidc").exists()
    data = ensure_fp_dataset(
        tmp_path / "fp", n_train=1, n_val=1, n_test=1, shape=(72, 72, 48), spacing=(1.5, 1.5, 2.0)
    )
    _run_exported(
        out, "training", "--config_file", "configs/train.json", "--dataset_dir", str(data),
        "--epochs", "1", "--samples_per_epoch", "16", "--batch_size", "8", "--val_interval", "1",
        "--network_def#features", "[4,8,8,8,8]", "--network_def#fc_features", "[16,16]",
    )  # fmt: skip
    assert (out / "models" / "model.pt").is_file()


def test_export_refuses_a_non_bundle_and_an_existing_output(tmp_path: Path):
    result = _export("no_such_bundle", tmp_path / "x")
    assert result.returncode == 2 and "no_such_bundle" in result.stderr and "not a bundle" in result.stderr
    assert not (tmp_path / "x").exists()
    (tmp_path / "taken").mkdir()
    result = _export("lung_nodule_ct_segmentation", tmp_path / "taken")
    assert result.returncode == 2 and "exists already" in result.stderr
    assert list((tmp_path / "taken").iterdir()) == []  # left as it was
