"""large_files.yml: every weight file with its hash, checked before torch.load(weights_only=True)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch

from lungcad_transforms.apps.zoo.export import large_files_text
from lungcad_transforms.errors import InputError
from lungcad_transforms.utils.checkpoint import (
    expected_hash,
    load_checkpoint,
    read_large_files,
    require_checkpoint,
    verify_checkpoint,
)


def _bundle(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "my_bundle"
    (root / "configs").mkdir(parents=True)
    (root / "configs" / "metadata.json").write_text("{}")
    (root / "models").mkdir()
    weights = root / "models" / "model.pt"
    torch.save({"w": torch.arange(4.0)}, weights)
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    entries = [{"path": "models/model.pt", "url": "", "hash_val": digest, "hash_type": "sha256"}]
    (root / "large_files.yml").write_text(large_files_text(entries))
    return root, weights


def test_listed_weights_load_when_the_hash_matches(tmp_path: Path):
    root, weights = _bundle(tmp_path)
    assert read_large_files(root)[0]["path"] == "models/model.pt"
    assert expected_hash(weights) == (hashlib.sha256(weights.read_bytes()).hexdigest(), "sha256")
    assert torch.equal(load_checkpoint(weights, map_location="cpu")["w"], torch.arange(4.0))
    assert require_checkpoint(weights) == str(weights)


def test_tampered_weights_are_refused_before_loading(tmp_path: Path):
    root, weights = _bundle(tmp_path)
    torch.save({"w": torch.zeros(4)}, weights)  # same shape, other values: only the hash can tell
    for load in (load_checkpoint, require_checkpoint, verify_checkpoint):
        with pytest.raises(InputError, match="SHA-256 differs from the large_files.yml entry") as info:
            load(weights)
        assert info.value.path == str(weights)
    # an explicit hash takes precedence over the list
    assert set(load_checkpoint(weights, sha256=hashlib.sha256(weights.read_bytes()).hexdigest())) == {"w"}


def test_unlisted_weights_and_bundles_without_a_list_load_as_they_are(tmp_path: Path):
    root, weights = _bundle(tmp_path)
    other = root / "models" / "extra.pt"
    torch.save({"w": torch.ones(1)}, other)
    assert expected_hash(other) is None and set(load_checkpoint(other)) == {"w"}
    (root / "large_files.yml").unlink()
    assert read_large_files(root) == [] and expected_hash(weights) is None


@pytest.mark.parametrize(
    "text, problem",
    [
        ("large_files: [", "cannot be parsed"),
        ("files: []", "no 'large_files' list"),
        ("large_files:\n  - path: models/model.pt\n", "needs 'path' and 'hash_val'"),
        ("large_files:\n  - {path: models/model.pt, hash_val: ab, hash_type: crc32}\n", "unknown hash_type"),
    ],
)
def test_a_malformed_list_is_reported_with_its_file(tmp_path: Path, text: str, problem: str):
    root, weights = _bundle(tmp_path)
    (root / "large_files.yml").write_text(text)
    with pytest.raises(InputError, match=problem) as info:
        load_checkpoint(weights)
    assert info.value.path == str(root / "large_files.yml")


def test_md5_entries_as_the_model_zoo_writes_them(tmp_path: Path):
    root, weights = _bundle(tmp_path)
    md5 = hashlib.md5(weights.read_bytes()).hexdigest()
    (root / "large_files.yml").write_text(
        f'large_files:\n  - path: "models/model.pt"\n    url: "https://example.org/model.pt"\n    hash_val: "{md5}"\n    hash_type: "md5"\n'
    )
    assert set(load_checkpoint(weights)) == {"w"}
    weights.write_bytes(weights.read_bytes() + b"\0")
    with pytest.raises(InputError, match="MD5 differs"):
        load_checkpoint(weights)
