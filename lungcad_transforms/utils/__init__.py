"""Atomic outputs, file locks and checkpoint guards."""

from __future__ import annotations

from lungcad_transforms.utils.atomic import atomic_dir, atomic_file
from lungcad_transforms.utils.checkpoint import TRAIN_COMMAND, require_checkpoint, require_trained_model
from lungcad_transforms.utils.locks import dataset_lock
