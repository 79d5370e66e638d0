"""Bundle zips: writing one with its ``model_info.json`` checksums, and importing one safely.

A zip from elsewhere is checked before anything is written: every entry must be a plain file or folder
inside one top folder (the bundle), with a relative path free of ``..`` (no path traversal, "zip slip"),
no symbolic link, and the zip must match the checksum its ``model_info.json`` records.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import zipfile
from pathlib import Path, PurePosixPath

from lungcad_transforms.errors import InputError
from lungcad_transforms.utils.atomic import atomic_dir, atomic_file
from lungcad_transforms.utils.locks import dataset_lock

__all__ = ["MODEL_INFO", "write_bundle_zip", "update_model_info", "check_bundle_zip", "import_bundle"]

MODEL_INFO = "model_info.json"


def _digests(path: Path) -> dict[str, str]:
    md5, sha256 = hashlib.md5(usedforsecurity=False), hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            md5.update(block)
            sha256.update(block)
    return {"md5": md5.hexdigest(), "sha256": sha256.hexdigest()}


def write_bundle_zip(folder: str | os.PathLike, zip_path: str | os.PathLike) -> Path:
    """Zip ``folder`` into ``zip_path`` as one top folder named like ``folder`` (the Model Zoo's layout).

    Entries are written in sorted order with fixed timestamps, so the same bundle gives the same zip.
    """
    folder, zip_path = Path(folder), Path(zip_path)
    with atomic_file(zip_path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_symlink():
                raise InputError(path, "is a symbolic link; a bundle zip holds plain files only")
            if path.is_file():
                arcname = PurePosixPath(folder.name, *path.relative_to(folder).parts).as_posix()
                info = zipfile.ZipInfo(arcname, date_time=(2020, 1, 1, 0, 0, 0))
                info.external_attr = (stat.S_IFREG | 0o644) << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, path.read_bytes())
    return zip_path


def update_model_info(zip_path: str | os.PathLike, key: str) -> Path:
    """Record the checksums of ``zip_path`` under ``key`` in the ``model_info.json`` beside it.

    The entry has the Model Zoo's ``checksum`` (MD5) and ``source``, plus ``sha256``; other entries of an
    existing ``model_info.json`` are kept.

    Returns:
        the ``model_info.json`` written.
    """
    zip_path = Path(zip_path)
    info_path = zip_path.parent / MODEL_INFO
    info = json.loads(info_path.read_text(encoding="utf-8")) if info_path.is_file() else {}
    digests = _digests(zip_path)
    info[key] = {"checksum": digests["md5"], "sha256": digests["sha256"], "source": zip_path.name}
    with dataset_lock(str(info_path)), atomic_file(info_path) as tmp:
        tmp.write_text(json.dumps(info, indent=4) + "\n", encoding="utf-8")
    return info_path


def _expected_sha256(zip_path: Path) -> str | None:
    info_path = zip_path.parent / MODEL_INFO
    if not info_path.is_file():
        return None
    for entry in json.loads(info_path.read_text(encoding="utf-8")).values():
        if isinstance(entry, dict) and entry.get("source") == zip_path.name and entry.get("sha256"):
            return str(entry["sha256"]).lower()
    return None


def check_bundle_zip(zip_path: str | os.PathLike, sha256: str | None = None) -> str:
    """Check a bundle zip without extracting it; return the name of its top folder (the bundle).

    Args:
        zip_path: the zip.
        sha256: its expected SHA-256; ``None``: the one its ``model_info.json`` (beside it) records, if any.

    Raises:
        InputError: the checksum differs, or an entry has an absolute path, a ``..`` component, a
            backslash, is a symbolic link (or another special file), or lies outside one top folder.
    """
    zip_path = Path(zip_path)
    if not zipfile.is_zipfile(zip_path):
        raise InputError(zip_path, "is not a zip file")
    expected = sha256.lower() if sha256 is not None else _expected_sha256(zip_path)
    if expected is not None and _digests(zip_path)["sha256"] != expected:
        raise InputError(zip_path, f"SHA-256 differs from the expected {expected}: not imported")
    tops = set()
    with zipfile.ZipFile(zip_path) as zf:
        for info in zf.infolist():
            name = info.filename
            parts = PurePosixPath(name).parts
            if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":") or "\\" in name:
                raise InputError(zip_path, f"entry {name!r} has an absolute or non-POSIX path: not imported")
            if ".." in parts:
                raise InputError(zip_path, f"entry {name!r} points outside the bundle (..): not imported")
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode) or (mode and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))):
                raise InputError(zip_path, f"entry {name!r} is a symbolic link or special file: not imported")
            if parts:
                tops.add(parts[0])
        if len(tops) != 1 or not any(
            PurePosixPath(i.filename).parts[1:] == ("configs", "metadata.json") for i in zf.infolist()
        ):
            raise InputError(zip_path, "is not one bundle folder with configs/metadata.json")
    return tops.pop()


def import_bundle(
    zip_path: str | os.PathLike, into: str | os.PathLike, sha256: str | None = None, force: bool = False
) -> Path:
    """Extract a bundle zip into folder ``into`` after :func:`check_bundle_zip`; return the bundle folder.

    Raises:
        InputError: the zip fails the checks (nothing is written), or ``into/<bundle>`` exists and
            ``force`` is not set.
    """
    name = check_bundle_zip(zip_path, sha256)
    dest = Path(into) / name
    if dest.exists() and not force:
        raise InputError(dest, "exists already; pass --force to replace it")
    with atomic_dir(dest) as tmp, zipfile.ZipFile(zip_path) as zf:
        for info in zf.infolist():
            rel = PurePosixPath(info.filename).parts[1:]
            if not rel:
                continue
            target = tmp.joinpath(*rel)
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(target, "wb") as dst:
                for block in iter(lambda: src.read(1 << 20), b""):
                    dst.write(block)
        tmp.chmod(0o755)
    return dest
