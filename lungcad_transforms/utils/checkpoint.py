"""Checkpoint guards: a clear message when the weights a config needs are missing."""

from __future__ import annotations

import logging
import os

from lungcad_transforms.errors import InputError

logger = logging.getLogger(__name__)

__all__ = ["require_trained_model", "TRAIN_COMMAND", "require_checkpoint"]


def require_trained_model(path: str | os.PathLike) -> str:
    """Return ``path`` when trained weights are there; otherwise stop with how to get them.

    Raises:
        InputError: no file at ``path``; the message gives the training command.

    Examples:
        >>> require_trained_model("bundles/lung_nodule_ct_fp_reduction/models/model.pt")  # doctest: +SKIP
        'bundles/lung_nodule_ct_fp_reduction/models/model.pt'
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise InputError(
            path,
            "no trained weights: train first with `python -m monai.bundle run training --config_file "
            "bundles/lung_nodule_ct_fp_reduction/configs/train.json`, or copy a trained model.pt here",
        )
    return path


TRAIN_COMMAND = (
    "python -m monai.bundle run training --config_file bundles/lung_nodule_ct_segmentation/configs/train.json"
)


def require_checkpoint(path: str | os.PathLike) -> str:
    """Return ``path`` when trained weights are there; otherwise stop with how to get them.

    Raises:
        InputError: no file at ``path``; the message gives the training command and where a downloaded
            ``model.pt`` goes.

    Examples:
        >>> require_checkpoint("bundles/lung_nodule_ct_segmentation/models/model.pt")  # doctest: +SKIP
        'bundles/lung_nodule_ct_segmentation/models/model.pt'
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        message = (
            "no trained weights. Train the model first (on the built-in synthetic data, or on yours with "
            f"--dataset_dir): `{TRAIN_COMMAND}`, or copy a trained model.pt to this path "
            "(or point --ckpt_path at one)"
        )
        logger.error("%s: %s", path, message)
        raise InputError(path, message)
    return path
