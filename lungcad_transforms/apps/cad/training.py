"""Trained weights for the CAD chain: train the two CT bundles (briefly) where no ``model.pt`` is there yet."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from lungcad_transforms.apps.cad.bundles import FP_REDUCTION_BUNDLE, SEGMENTATION_BUNDLE, CADBundles
from lungcad_transforms.errors import InputError

logger = logging.getLogger(__name__)

__all__ = ["BRIEF_TRAINING", "ensure_trained_bundles"]

# the demo's brief training on each bundle's built-in synthetic data (``monai.bundle`` overrides)
BRIEF_TRAINING: dict[str, list[str]] = {
    # the full recipe is 400 epochs (about 16 min on 2 cores); 120 keep the demo within its 10 minutes
    SEGMENTATION_BUNDLE: ["--epochs", "120", "--val_interval", "10"],
    # the full recipe is 12 epochs (about 4 min)
    FP_REDUCTION_BUNDLE: ["--epochs", "6", "--val_interval", "2"],
}


def _copy_bundle(source: Path, target: Path) -> None:
    """A bundle folder of its own for trained weights: the source's configs, docs and licence."""
    target.mkdir(parents=True, exist_ok=True)
    for item in ("configs", "docs"):
        if (source / item).is_dir() and not (target / item).exists():
            shutil.copytree(source / item, target / item)
    if (source / "LICENSE").is_file() and not (target / "LICENSE").exists():
        shutil.copyfile(source / "LICENSE", target / "LICENSE")


def ensure_trained_bundles(
    source: CADBundles,
    target_root: str | os.PathLike,
    overrides: Mapping[str, Sequence[str]] | None = None,
    log: logging.Logger | None = None,
    timeout_s: float | None = None,
) -> CADBundles:
    """Bundles with trained weights under ``target_root``: the source bundles' weights when they have
    them, else weights trained here with ``python -m monai.bundle run training`` (reused on later calls).

    Args:
        source: the bundles whose configs define the training (the repository's ``bundles/``).
        target_root: gets ``<bundle name>/{configs,models,data,eval}`` for each bundle trained here.
        overrides: ``monai.bundle`` command-line overrides per bundle name (default :data:`BRIEF_TRAINING`).
        log: where to say what is trained (default: this module's logger).
        timeout_s: limit per training run.

    Returns:
        the bundles to run: for each, the source when it holds ``models/model.pt``, else the trained copy.

    Raises:
        InputError: a training run failed (its last output lines in the message).
    """
    log = log or logger
    overrides = BRIEF_TRAINING if overrides is None else overrides
    root = Path(target_root)
    chosen = {}
    for name, folder in (
        (SEGMENTATION_BUNDLE, source.segmentation),
        (FP_REDUCTION_BUNDLE, source.fp_reduction),
    ):
        if (folder / "models" / "model.pt").is_file():
            chosen[name] = folder
            continue
        target = root / name
        if (target / "models" / "model.pt").is_file():
            log.info("%s: reusing the weights trained earlier in %s", name, target / "models")
            chosen[name] = target
            continue
        _copy_bundle(folder, target)
        command = [
            sys.executable, "-m", "monai.bundle", "run", "training",
            "--config_file", str(target / "configs" / "train.json"), "--bundle_root", str(target),
            *overrides.get(name, []),
        ]  # fmt: skip
        log.warning("%s: no trained weights; training it briefly on its built-in synthetic data ...", name)
        start = time.perf_counter()
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)
        if result.returncode != 0 or not (target / "models" / "model.pt").is_file():
            tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
            raise InputError(target, f"training failed (exit {result.returncode}):\n{tail}")
        log.warning(
            "%s: trained in %.0f s; weights in %s", name, time.perf_counter() - start, target / "models"
        )
        chosen[name] = target
    return CADBundles(chosen[SEGMENTATION_BUNDLE], chosen[FP_REDUCTION_BUNDLE])
