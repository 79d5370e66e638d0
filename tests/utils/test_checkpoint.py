"""require_checkpoint / load_checkpoint (one guard, one checked load) and dataset_lock."""

from __future__ import annotations

import hashlib
import multiprocessing
import time
from pathlib import Path

import pytest
import torch

from lungcad_transforms.errors import InputError
from lungcad_transforms.utils import dataset_lock, load_checkpoint, require_checkpoint


def test_require_checkpoint_names_the_bundles_train_config(tmp_path: Path):
    bundle = tmp_path / "my_bundle"
    (bundle / "configs").mkdir(parents=True)
    (bundle / "configs" / "train.json").write_text("{}")
    missing = bundle / "models" / "model.pt"
    with pytest.raises(InputError, match="no trained weights") as info:
        require_checkpoint(missing)
    assert info.value.path == str(missing)
    assert f"monai.bundle run training --config_file {bundle / 'configs' / 'train.json'}" in str(info.value)
    with pytest.raises(InputError, match=r"<bundle>/configs/train.json.*model\.pt"):
        require_checkpoint(tmp_path / "elsewhere.pt")
    missing.parent.mkdir()
    torch.save({"w": torch.ones(2)}, missing)
    assert require_checkpoint(missing) == str(missing)


def test_load_checkpoint_checks_the_hash_and_loads_weights_only(tmp_path: Path):
    path = tmp_path / "model.pt"
    torch.save({"w": torch.arange(3.0)}, path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert torch.equal(
        load_checkpoint(path, map_location="cpu", sha256=digest.upper())["w"], torch.arange(3.0)
    )
    assert set(load_checkpoint(path)) == {"w"}  # no hash given: not checked
    with pytest.raises(InputError, match="SHA-256 differs") as info:
        load_checkpoint(path, sha256="0" * 64)
    assert info.value.path == str(path)
    with pytest.raises(InputError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "cut.pt").write_bytes(path.read_bytes()[:20])
    with pytest.raises(InputError, match="cannot be read as a torch checkpoint"):
        load_checkpoint(tmp_path / "cut.pt")
    torch.save({"net": torch.nn.Linear(2, 2)}, tmp_path / "pickled.pt")  # a module, not tensors
    with pytest.raises(InputError, match="cannot be read as a torch checkpoint"):
        load_checkpoint(tmp_path / "pickled.pt")


def _hold(root: str) -> tuple[float, float]:
    with dataset_lock(root):
        start = time.monotonic()
        time.sleep(0.3)
        return start, time.monotonic()


def test_dataset_lock_serialises_processes(tmp_path: Path):
    root = str(tmp_path / "data" / "phantoms")
    # fork: the lock is between processes, and forked ones start at once (spawned ones re-import torch)
    with multiprocessing.get_context("fork").Pool(2) as pool:
        (a0, a1), (b0, b1) = pool.map(_hold, [root, root])
    assert a1 <= b0 or b1 <= a0  # never inside the block at the same time
    assert (tmp_path / "data" / ".phantoms.lock").exists()
