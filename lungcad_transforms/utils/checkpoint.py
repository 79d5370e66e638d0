"""Checkpoints: a clear message when the weights a config needs are missing, and a checked load.

A bundle lists its weight files in ``large_files.yml`` at its root, in the MONAI Model Zoo's form (one entry
per file: ``path`` relative to the bundle, ``url``, ``hash_val``, ``hash_type``). A checkpoint listed there is
loaded only when its hash matches; one that is not listed is loaded as it is.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from lungcad_transforms.errors import InputError

logger = logging.getLogger(__name__)

__all__ = [
    "LARGE_FILES_NAMES",
    "read_large_files",
    "expected_hash",
    "verify_checkpoint",
    "require_checkpoint",
    "load_checkpoint",
]

# the names the Model Zoo's CI looks for at a bundle's root, in its order of preference
LARGE_FILES_NAMES = ("large_files.yml", "large_files.yaml", "large_files.json")
_HASH_TYPES = {"md5": "MD5", "sha1": "SHA-1", "sha256": "SHA-256", "sha512": "SHA-512"}


def _train_config(path: str) -> str:
    """The config that trains the weights at ``path``: a bundle keeps them in ``<bundle>/models/``."""
    config = Path(path).parent.parent / "configs" / "train.json"
    return str(config) if config.is_file() else "<bundle>/configs/train.json"


def read_large_files(bundle_dir: str | os.PathLike) -> list[dict[str, str]]:
    """The entries of the ``large_files.yml`` (or ``.yaml`` / ``.json``) at the root of ``bundle_dir``.

    Returns:
        one dict per file with ``path``, ``url``, ``hash_val`` and ``hash_type`` (``url`` may be empty when
        the file ships inside the bundle); an empty list when the bundle has no such file.

    Raises:
        InputError: the file cannot be parsed, or an entry lacks ``path`` / ``hash_val`` or names a hash type
            other than md5, sha1, sha256, sha512.

    Examples:
        >>> read_large_files("bundles/lung_nodule_ct_segmentation")  # doctest: +SKIP
        [{'path': 'models/model.pt', 'url': '', 'hash_val': '9f86d0...', 'hash_type': 'sha256'}]
    """
    for name in LARGE_FILES_NAMES:
        manifest = Path(bundle_dir) / name
        if manifest.is_file():
            break
    else:
        return []
    try:
        import yaml  # JSON is YAML too, so one parser reads all three names

        content = yaml.safe_load(manifest.read_text(encoding="utf-8")) or {}
    except Exception as err:  # noqa: BLE001 - yaml raises several types on a malformed file
        raise InputError(manifest, f"cannot be parsed ({err})") from err
    entries = content.get("large_files") if isinstance(content, dict) else None
    if not isinstance(entries, list):
        raise InputError(manifest, "has no 'large_files' list")
    checked = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not entry.get("path") or not entry.get("hash_val"):
            raise InputError(manifest, f"entry {i} needs 'path' and 'hash_val', got {entry!r}")
        hash_type = str(entry.get("hash_type", "md5")).lower()
        if hash_type not in _HASH_TYPES:
            raise InputError(manifest, f"entry {i} ({entry['path']}): unknown hash_type {hash_type!r}")
        checked.append(
            {
                "path": str(entry["path"]),
                "url": str(entry.get("url") or ""),
                "hash_val": str(entry["hash_val"]).strip().lower(),
                "hash_type": hash_type,
            }
        )
    return checked


def _bundle_root_of(path: Path) -> Path | None:
    # a bundle keeps its weights under <bundle>/models/ (possibly in a sub-folder): the nearest folder
    # above the file that has configs/metadata.json
    for folder in path.resolve().parents:
        if (folder / "configs" / "metadata.json").is_file():
            return folder
    return None


def expected_hash(path: str | os.PathLike) -> tuple[str, str] | None:
    """The ``(hash_val, hash_type)`` that the bundle holding ``path`` lists for it, or None when unlisted.

    Examples:
        >>> expected_hash("bundles/lung_nodule_ct_segmentation/models/model.pt")  # doctest: +SKIP
        ('9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08', 'sha256')
    """
    path = Path(path)
    root = _bundle_root_of(path)
    if root is None:
        return None
    for entry in read_large_files(root):
        if (root / entry["path"]).resolve() == path.resolve():
            return entry["hash_val"], entry["hash_type"]
    return None


def verify_checkpoint(path: str | os.PathLike, sha256: str | None = None) -> str:
    """Check the file at ``path`` against ``sha256``, or else against its bundle's ``large_files.yml``.

    Args:
        path: the checkpoint file.
        sha256: the expected SHA-256 (hex); ``None``: the hash its bundle's ``large_files.yml`` lists, if any.

    Returns:
        ``path``, checked.

    Raises:
        InputError: the file is missing, or its hash differs from the expected one.
    """
    from monai.apps.utils import check_hash  # monai.apps takes seconds to import: only when needed

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise InputError(path, "checkpoint not found")
    expected = (sha256.strip().lower(), "sha256") if sha256 is not None else expected_hash(path)
    if expected is not None and not check_hash(path, expected[0], hash_type=expected[1]):
        where = "the expected" if sha256 is not None else "the large_files.yml entry"
        message = (
            f"{_HASH_TYPES[expected[1]]} differs from {where} {expected[0]}: a partial download, a corrupted "
            "copy or another file; not loaded"
        )
        logger.error(
            "%s: %s", path, message
        )  # a bundle run reports a failing expression wrapped in its own error
        raise InputError(path, message)
    return path


def require_checkpoint(path: str | os.PathLike, train_config: str | os.PathLike | None = None) -> str:
    """Return ``path`` when trained weights are there (and match their ``large_files.yml`` hash, if listed).

    Args:
        path: the checkpoint a config loads (``<bundle>/models/model.pt``).
        train_config: the config that trains it, for the message; by default the ``configs/train.json``
            of the bundle that holds ``path``.

    Raises:
        InputError: no file at ``path``; the message gives the training command and where a trained
            ``model.pt`` goes. Or the file differs from the hash its bundle's ``large_files.yml`` lists.

    Examples:
        >>> require_checkpoint("bundles/lung_nodule_ct_segmentation/models/model.pt")  # doctest: +SKIP
        'bundles/lung_nodule_ct_segmentation/models/model.pt'
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        config = os.fspath(train_config) if train_config is not None else _train_config(path)
        message = (
            "no trained weights. Train the model first (on the built-in synthetic data, or on yours with "
            f"--dataset_dir): `python -m monai.bundle run training --config_file {config}`, or copy a "
            "trained model.pt to this path (or point --ckpt_path at one)"
        )
        # logged as well: a bundle run reports a failing expression wrapped in its own error
        logger.error("%s: %s", path, message)
        raise InputError(path, message)
    return verify_checkpoint(path)


def load_checkpoint(path: str | os.PathLike, map_location: Any = None, sha256: str | None = None) -> Any:
    """Load a checkpoint with ``torch.load(..., weights_only=True)``, after checking its hash.

    ``weights_only`` loads tensors and plain containers only, never arbitrary pickled objects, so a
    checkpoint from elsewhere cannot run code; the hash makes sure it is the file it should be.

    Args:
        path: the checkpoint file.
        map_location: as ``torch.load`` (``"cpu"``, a device, ...).
        sha256: the expected SHA-256 (hex) of the file; ``None``: the hash that the ``large_files.yml`` of
            the bundle holding the file lists for it (not checked when the file is not listed there).

    Returns:
        what the file holds (a state dict, or a dict of state dicts from ignite's ``ModelCheckpoint``).

    Raises:
        InputError: the file is missing, its hash differs from the expected one, or it is not a torch
            checkpoint of tensors (truncated, or a pickled object).

    Examples:
        >>> state = load_checkpoint("models/model.pt", map_location="cpu", sha256="9f86d0...")  # doctest: +SKIP
    """
    import torch

    path = verify_checkpoint(path, sha256)
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch raises many types on a truncated or foreign file
        raise InputError(path, f"cannot be read as a torch checkpoint ({err})") from err
