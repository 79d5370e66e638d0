"""`lungcad export-bundle --zip` and `lungcad import-bundle`: checksums, large_files.yml, refused zips."""

from __future__ import annotations

import hashlib
import json
import shutil
import stat
import zipfile
from pathlib import Path

import pytest
import torch
import yaml

from lungcad_transforms.apps.zoo.archive import check_bundle_zip, import_bundle
from lungcad_transforms.cli import main
from lungcad_transforms.errors import InputError

REPO_ROOT = Path(__file__).resolve().parents[3]
NAME = "lung_nodule_ct_fp_reduction"


@pytest.fixture
def source_bundle(tmp_path: Path) -> Path:
    """The FP bundle's tracked files, with a stand-in models/model.pt."""
    src, dst = REPO_ROOT / "bundles" / NAME, tmp_path / "src" / NAME
    shutil.copytree(src / "configs", dst / "configs")
    shutil.copytree(src / "docs", dst / "docs")
    shutil.copy2(src / "LICENSE", dst / "LICENSE")
    (dst / "models").mkdir()
    shutil.copy2(src / "models" / "README.md", dst / "models" / "README.md")
    torch.save({"w": torch.arange(3.0)}, dst / "models" / "model.pt")
    return dst


def test_export_zip_carries_large_files_and_model_info_and_imports_back(
    source_bundle: Path, tmp_path: Path, capsys
):
    out = tmp_path / "dist" / "fp"
    url = "https://example.org/releases/fp_v0.1.0"
    assert main(["export-bundle", str(source_bundle), "--out", str(out), "--zip", "--weights-url", url]) == 0
    zip_path = tmp_path / "dist" / "fp.zip"
    assert zip_path.is_file() and "model_info.json" in capsys.readouterr().out
    version = json.loads((source_bundle / "configs" / "metadata.json").read_text())["version"]
    info = json.loads((tmp_path / "dist" / "model_info.json").read_text())[f"{NAME}_v{version}"]
    data = zip_path.read_bytes()
    assert info == {
        "checksum": hashlib.md5(data).hexdigest(),
        "sha256": hashlib.sha256(data).hexdigest(),
        "source": "fp.zip",
    }
    with zipfile.ZipFile(zip_path) as zf:
        names = set(zf.namelist())
        assert {
            f"{NAME}/configs/metadata.json",
            f"{NAME}/models/model.pt",
            f"{NAME}/large_files.yml",
        } <= names
        assert all(n.startswith(f"{NAME}/") for n in names)
        assert any(n.startswith(f"{NAME}/scripts/lungcad_transforms/networks/nets/mgicnn") for n in names)
        large = yaml.safe_load(zf.read(f"{NAME}/large_files.yml"))["large_files"]
    weights = (source_bundle / "models" / "model.pt").read_bytes()
    assert large == [
        {
            "path": "models/model.pt",
            "url": f"{url}/models/model.pt",
            "hash_val": hashlib.sha256(weights).hexdigest(),
            "hash_type": "sha256",
        }
    ]
    # the same bundle gives the same zip
    again = [
        "export-bundle",
        str(source_bundle),
        "--out",
        str(tmp_path / "again.zip"),
        "--zip",
        "--weights-url",
        url,
    ]
    assert main(again) == 0
    assert (tmp_path / "again.zip").read_bytes() == data

    assert main(["import-bundle", str(zip_path), "--into", str(tmp_path / "imported")]) == 0
    imported = tmp_path / "imported" / NAME
    assert (imported / "models" / "model.pt").read_bytes() == weights
    assert (imported / "large_files.yml").is_file() and (imported / "scripts" / "__init__.py").is_file()
    # importing again into the same place is refused unless forced
    assert main(["import-bundle", str(zip_path), "--into", str(tmp_path / "imported")]) == 2
    assert "exists already" in capsys.readouterr().err


def test_a_zip_that_differs_from_its_model_info_is_refused(source_bundle: Path, tmp_path: Path):
    zip_path = tmp_path / "fp.zip"
    assert main(["export-bundle", str(source_bundle), "--out", str(zip_path), "--zip"]) == 0
    with zipfile.ZipFile(zip_path, "a") as zf:
        zf.writestr(f"{NAME}/configs/extra.json", "{}")  # changed after its checksum was recorded
    with pytest.raises(InputError, match="SHA-256 differs"):
        import_bundle(zip_path, tmp_path / "imported")
    assert not (tmp_path / "imported").exists()


def _zip(path: Path, entries: list[tuple[str, bytes, int]]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data, mode in entries:
            info = zipfile.ZipInfo(name)
            info.external_attr = mode << 16
            zf.writestr(info, data)
    return path


META = (f"{NAME}/configs/metadata.json", b"{}", stat.S_IFREG | 0o644)


@pytest.mark.parametrize(
    "entry, problem",
    [
        ((f"{NAME}/../../evil.py", b"x", stat.S_IFREG | 0o644), r"outside the bundle \(\.\.\)"),
        (("/etc/evil.py", b"x", stat.S_IFREG | 0o644), "absolute"),
        ((f"{NAME}\\..\\evil.py", b"x", stat.S_IFREG | 0o644), "absolute or non-POSIX"),
        ((f"{NAME}/models/model.pt", b"/etc/passwd", stat.S_IFLNK | 0o777), "symbolic link"),
        (("other_bundle/configs/metadata.json", b"{}", stat.S_IFREG | 0o644), "one bundle folder"),
    ],
)
def test_traversal_absolute_and_symlink_entries_are_refused(tmp_path: Path, entry, problem):
    zip_path = _zip(tmp_path / "bad.zip", [META, entry])
    with pytest.raises(InputError, match=problem):
        check_bundle_zip(zip_path)
    with pytest.raises(InputError, match=problem):
        import_bundle(zip_path, tmp_path / "into")
    assert not (tmp_path / "into").exists() and not (tmp_path.parent / "evil.py").exists()


def test_a_file_that_is_not_a_zip_is_refused(tmp_path: Path):
    (tmp_path / "x.zip").write_bytes(b"not a zip")
    with pytest.raises(InputError, match="not a zip file"):
        import_bundle(tmp_path / "x.zip", tmp_path / "into")


def test_export_refuses_a_non_bundle_an_existing_output_and_corrupted_weights(
    source_bundle: Path, tmp_path: Path, capsys
):
    assert main(["export-bundle", "no_such_bundle", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "no_such_bundle" in err and "not a bundle" in err and not (tmp_path / "x").exists()
    (tmp_path / "taken").mkdir()
    assert main(["export-bundle", str(source_bundle), "--out", str(tmp_path / "taken")]) == 2
    assert "exists already" in capsys.readouterr().err and list((tmp_path / "taken").iterdir()) == []
    # weights whose own large_files.yml says otherwise are never exported
    (source_bundle / "large_files.yml").write_text(
        'large_files:\n  - path: "models/model.pt"\n    url: ""\n    hash_val: "'
        + "0" * 64
        + '"\n    hash_type: "sha256"\n'
    )
    assert main(["export-bundle", str(source_bundle), "--out", str(tmp_path / "y")]) == 2
    assert "SHA-256 differs" in capsys.readouterr().err and not (tmp_path / "y").exists()
