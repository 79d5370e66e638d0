"""Checkpoints: a clear message when the weights a config needs are missing, and a checked load."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from lungcad_transforms.errors import InputError

logger = logging.getLogger(__name__)

__all__ = ["require_checkpoint", "load_checkpoint"]


def _train_config(path: str) -> str:
    """The config that trains the weights at ``path``: a bundle keeps them in ``<bundle>/models/``."""
    config = Path(path).parent.parent / "configs" / "train.json"
    return str(config) if config.is_file() else "<bundle>/configs/train.json"


def require_checkpoint(path: str | os.PathLike, train_config: str | os.PathLike | None = None) -> str:
    """Return ``path`` when trained weights are there; otherwise stop with how to get them.

    Args:
        path: the checkpoint a config loads (``<bundle>/models/model.pt``).
        train_config: the config that trains it, for the message; by default the ``configs/train.json``
            of the bundle that holds ``path``.

    Raises:
        InputError: no file at ``path``; the message gives the training command and where a trained
            ``model.pt`` goes.

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
    return path


def load_checkpoint(path: str | os.PathLike, map_location: Any = None, sha256: str | None = None) -> Any:
    """Load a checkpoint with ``torch.load(..., weights_only=True)``, after checking its SHA-256 if given.

    ``weights_only`` loads tensors and plain containers only, never arbitrary pickled objects, so a
    checkpoint from elsewhere cannot run code; the hash makes sure it is the file it should be.

    Args:
        path: the checkpoint file.
        map_location: as ``torch.load`` (``"cpu"``, a device, ...).
        sha256: the expected SHA-256 (hex) of the file; ``None``: not checked.

    Returns:
        what the file holds (a state dict, or a dict of state dicts from ignite's ``ModelCheckpoint``).

    Raises:
        InputError: the file is missing, its SHA-256 differs from ``sha256``, or it is not a torch
            checkpoint of tensors (truncated, or a pickled object).

    Examples:
        >>> state = load_checkpoint("models/model.pt", map_location="cpu", sha256="9f86d0...")  # doctest: +SKIP
    """
    import torch

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise InputError(path, "checkpoint not found")
    if sha256 is not None:
        from monai.apps.utils import check_hash  # monai.apps takes seconds to import: only when needed

        if not check_hash(path, sha256.strip().lower(), hash_type="sha256"):
            raise InputError(
                path, f"SHA-256 differs from the expected {sha256}: a partial download or another file"
            )
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch raises many types on a truncated or foreign file
        raise InputError(path, f"cannot be read as a torch checkpoint ({err})") from err
