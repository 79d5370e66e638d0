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

__all__ = ["BRIEF_TRAINING", "ensure_trained_bundles", "train_fp_on_segmentation_candidates"]

# the demo's brief training (``monai.bundle`` overrides): the segmentation bundle on its phantoms alone (the
# hybrid part of its default costs about 5 CPU-minutes to write and is what the full recipe is for; an empty
# background list turns it off, as ``--embedded_hybrid None`` cannot: ``monai.bundle run`` drops overrides
# whose value is None), then
# the FP-reduction bundle on that model's own candidates (:func:`train_fp_on_segmentation_candidates`) for
# 10 epochs at 3x the bundle's learning rate (its 6-epoch run at the default rate stayed near chance:
# validation CPM 0.27; this one reaches 0.75, as 12 epochs at the default rate do); together within the
# demo's 10 minutes on 2 cores
BRIEF_TRAINING: dict[str, list[str]] = {
    SEGMENTATION_BUNDLE: ["--epochs", "60", "--val_interval", "20", "--embedded_hybrid#backgrounds", "[]"],
    FP_REDUCTION_BUNDLE: ["--epochs", "10", "--val_interval", "2", "--learning_rate", "0.003"],
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
    chain: bool = True,
) -> CADBundles:
    """Bundles with trained weights under ``target_root``: the source bundles' weights when they have
    them, else weights trained here with ``python -m monai.bundle run training`` (reused on later calls).

    Args:
        source: the bundles whose configs define the training (the repository's ``bundles/``).
        target_root: gets ``<bundle name>/{configs,models,data,eval}`` for each bundle trained here.
        overrides: ``monai.bundle`` command-line overrides per bundle name (default :data:`BRIEF_TRAINING`).
        log: where to say what is trained (default: this module's logger).
        timeout_s: limit per training run.
        chain: train the FP-reduction bundle on the segmentation bundle's own candidates
            (:func:`train_fp_on_segmentation_candidates`), as the chained run meets them; ``False``: on its own
            built-in candidates.

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
        log.warning("%s: no trained weights; training it briefly on its built-in synthetic data ...", name)
        start = time.perf_counter()
        if name == FP_REDUCTION_BUNDLE and chain:
            train_fp_on_segmentation_candidates(
                chosen[SEGMENTATION_BUNDLE], target, overrides.get(SEGMENTATION_BUNDLE, []),
                overrides.get(name, []), timeout_s=timeout_s,
            )  # fmt: skip
        else:
            _monai_bundle(
                ["training", "--config_file", str(target / "configs" / "train.json"), "--bundle_root", str(target),
                 *overrides.get(name, [])],
                target, timeout_s,
            )  # fmt: skip
            if not (target / "models" / "model.pt").is_file():
                raise InputError(target, "training finished without models/model.pt")
        log.warning(
            "%s: trained in %.0f s; weights in %s", name, time.perf_counter() - start, target / "models"
        )
        chosen[name] = target
    return CADBundles(chosen[SEGMENTATION_BUNDLE], chosen[FP_REDUCTION_BUNDLE])


def _monai_bundle(args: Sequence[str], where: Path, timeout_s: float | None) -> None:
    """``python -m monai.bundle run ...`` in a child process; its last lines in the error when it fails."""
    result = subprocess.run(
        [sys.executable, "-m", "monai.bundle", "run", *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        raise InputError(where, f"bundle run failed (exit {result.returncode}):\n{tail}")


def _setting(overrides: Sequence[str], key: str) -> str | None:
    """The value a ``--key value`` pair of bundle command-line overrides gives, if any."""
    flags = list(overrides)
    return flags[flags.index(f"--{key}") + 1] if f"--{key}" in flags[:-1] else None


def train_fp_on_segmentation_candidates(
    segmentation: str | os.PathLike,
    fp_target: str | os.PathLike,
    segmentation_overrides: Sequence[str] = (),
    fp_overrides: Sequence[str] = (),
    timeout_s: float | None = None,
) -> Path:
    """Train the FP-reduction bundle in ``fp_target`` on what a trained segmentation bundle finds.

    A chained CAD shows the FP-reduction network the segmentation's candidates, whose false positives
    (vessel cross-sections, airway walls, the network's own blind spots) differ from any generic candidate
    list. So the segmentation bundle's ``evaluate`` runs on each split of its own dataset (training,
    validation, test), :func:`~lungcad_transforms.apps.detection.label_candidates` labels the candidates by
    the LUNA16 hit rule (nodules it missed added as positives, excluded findings left out), and the
    FP-reduction bundle trains on the segmentation bundle's scans with that table.

    Args:
        segmentation: a trained segmentation bundle folder (``models/model.pt``).
        fp_target: the FP-reduction bundle folder to train (its configs; ``models/`` is written).
        segmentation_overrides: the ``monai.bundle`` overrides the segmentation bundle was trained with
            (its ``--dataset_dir`` above all); the evaluation runs use them too.
        fp_overrides: overrides of the FP training (epochs, batch size, ...); a ``--dataset_dir`` in them is
            replaced by the segmentation bundle's.
        timeout_s: limit per child run.

    Returns:
        the labelled candidate table the FP bundle trained on (``fp_target/seg_candidates/candidates.csv``).

    Raises:
        InputError: a child run failed, or the segmentation dataset lacks ``annotations.csv``.
    """
    from lungcad_transforms.apps.detection.segmentation_candidates import label_candidates

    seg, target = Path(segmentation), Path(fp_target)
    data = Path(_setting(segmentation_overrides, "dataset_dir") or seg / "data" / "embedded")
    work = target / "seg_candidates"
    results = []
    for split in ("training", "validation", "test"):
        out = work / split
        _monai_bundle(
            ["--config_file", str([str(seg / "configs" / "train.json"), str(seg / "configs" / "evaluate.json")]),
             "--bundle_root", str(seg), *segmentation_overrides, "--eval_split", split, "--output_dir", str(out)],
            seg, timeout_s,
        )  # fmt: skip
        results.append(out / "candidates.csv")
    if not (data / "annotations.csv").is_file():
        raise InputError(data, "no annotations.csv: the segmentation candidates cannot be labelled")
    excluded = data / "excluded.csv"
    table = work / "candidates.csv"
    label_candidates(
        results, data / "annotations.csv", table, excluded=excluded if excluded.is_file() else None
    )
    flags = list(fp_overrides)
    if "--dataset_dir" in flags[:-1]:
        i = flags.index("--dataset_dir")
        del flags[i : i + 2]
    _monai_bundle(
        ["training", "--config_file", str(target / "configs" / "train.json"), "--bundle_root", str(target),
         "--dataset_dir", str(data), "--candidates_file", str(table),
         "--annotations_file", str(data / "annotations.csv"), *flags],
        target, timeout_s,
    )  # fmt: skip
    if not (target / "models" / "model.pt").is_file():
        raise InputError(target, "training finished without models/model.pt")
    return table
