"""LUNA16: dataset preparation and the FROC / CPM evaluation command."""

from __future__ import annotations

from lungcad_transforms.apps.luna16.evaluation import add_froc_arguments, evaluate_files, froc_command
from lungcad_transforms.apps.luna16.prepare import prepare_luna16_dataset
