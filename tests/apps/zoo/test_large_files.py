"""The large_files.yml that `lungcad export-bundle` writes, held to the Model Zoo's form for EVERY bundle.

Weights are not in git, so each bundle is exported from a temporary copy that holds a model.pt written here;
the export must list it with its real SHA-256, and the zoo check must refuse what the zoo would refuse.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from lungcad_transforms.apps.zoo.checks import check_files, check_large_files
from lungcad_transforms.apps.zoo.export import export_bundle
from lungcad_transforms.errors import InputError

REPO_ROOT = Path(__file__).resolve().parents[3]
BUNDLES = sorted(
    p.name for p in (REPO_ROOT / "bundles").iterdir() if (p / "configs" / "metadata.json").is_file()
)


def _bundle_with_weights(name: str, tmp_path: Path) -> Path:
    src = REPO_ROOT / "bundles" / name
    copy = tmp_path / "src" / name
    shutil.copytree(src / "configs", copy / "configs")
    shutil.copytree(src / "docs", copy / "docs")
    shutil.copy2(src / "LICENSE", copy / "LICENSE")
    (copy / "models").mkdir()
    torch.save({"weight": torch.rand(8, 3)}, copy / "models" / "model.pt")
    return copy


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("bundle", BUNDLES)
def test_export_lists_its_weights_with_their_sha256(bundle: str, tmp_path: Path):
    src = _bundle_with_weights(bundle, tmp_path)
    out = export_bundle(src, tmp_path / "out" / bundle, weights_url="https://example.org/lungcad/")
    raw = yaml.safe_load((out / "large_files.yml").read_text())
    assert raw == {
        "large_files": [
            {
                "path": "models/model.pt",
                "url": "https://example.org/lungcad/models/model.pt",
                "hash_val": _sha256(out / "models" / "model.pt"),
                "hash_type": "sha256",
            }
        ]
    }
    assert _sha256(out / "models" / "model.pt") == _sha256(src / "models" / "model.pt")
    check_files(out, weights=True)
    # a copy that differs from its listed hash is what the zoo's download check refuses
    with open(out / "models" / "model.pt", "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(InputError, match="sha256 differs from the large_files.yml entry"):
        check_files(out, weights=True)


def test_weights_left_out_need_a_url(tmp_path: Path):
    src = _bundle_with_weights("lung_nodule_ct_fp_reduction", tmp_path)
    bare = export_bundle(src, tmp_path / "bare", weights=False)
    assert not (bare / "models" / "model.pt").exists()
    with pytest.raises(InputError, match="neither in the bundle nor has a url"):
        check_large_files(bare)
    published = export_bundle(src, tmp_path / "published", weights=False, weights_url="https://example.org/w")
    assert check_large_files(published)[0]["url"] == "https://example.org/w/models/model.pt"


def test_a_bundle_to_publish_lists_every_weight_file(tmp_path: Path):
    src = _bundle_with_weights("lung_nodule_ct_gan", tmp_path)
    out = export_bundle(src, tmp_path / "out")
    torch.save({"w": torch.zeros(2)}, out / "models" / "model_final.pt")  # added after the export
    with pytest.raises(
        InputError, match="model_final.pt: is a weight file that large_files.yml does not list"
    ):
        check_files(out, weights=True)
    (out / "models" / "model_final.pt").unlink()
    (out / "large_files.yml").write_text('large_files:\n  - path: "models/model.pt"\n    hash_val: "00"\n')
    with pytest.raises(InputError, match=r"entry 0 lacks \['url', 'hash_type'\]"):
        check_files(out, weights=True)
    (out / "large_files.yml").unlink()
    with pytest.raises(InputError, match="large_files.yml: is missing"):
        check_files(out, weights=True)
    check_files(out)  # a bundle in development (no weights to publish) needs no list
