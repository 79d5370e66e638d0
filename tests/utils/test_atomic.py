"""Atomic file and folder outputs."""

from __future__ import annotations

import pytest

from lungcad_transforms.errors import InputError
from lungcad_transforms.utils.atomic import atomic_dir, atomic_file


def test_atomic_file_appears_only_on_success(tmp_path):
    target = tmp_path / "out" / "mask.nii.gz"
    with atomic_file(target) as tmp:
        assert tmp.name.endswith(".nii.gz") and tmp.parent == target.parent
        tmp.write_bytes(b"abc")
        assert not target.exists()
    assert target.read_bytes() == b"abc"


def test_atomic_file_leaves_nothing_on_error(tmp_path):
    target = tmp_path / "results.csv"
    with pytest.raises(InputError, match="results.csv: broken"):
        with atomic_file(target) as tmp:
            tmp.write_text("half")
            raise InputError(target, "broken")
    assert list(tmp_path.iterdir()) == []


def test_atomic_dir_replaces_existing_only_when_complete(tmp_path):
    target = tmp_path / "series"
    target.mkdir()
    (target / "old.dcm").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_dir(target) as tmp:
            (tmp / "new.dcm").write_text("new")
            raise RuntimeError("crash")
    assert [p.name for p in target.iterdir()] == ["old.dcm"]
    with atomic_dir(target) as tmp:
        (tmp / "new.dcm").write_text("new")
    assert [p.name for p in target.iterdir()] == ["new.dcm"]
    assert [p.name for p in tmp_path.iterdir()] == ["series"]
