"""Synthetic CT, PET and MR phantoms with known nodules, and phantom datasets on disk."""

from __future__ import annotations

from lungcad_transforms.apps.phantoms.anatomy import Anatomy
from lungcad_transforms.apps.phantoms.ct import make_ct_phantom
from lungcad_transforms.apps.phantoms.dataset import ensure_phantom_dataset, write_phantom_dataset
from lungcad_transforms.apps.phantoms.draw import make_anatomy
from lungcad_transforms.apps.phantoms.pet_mr import make_mr_phantom, make_pet_phantom
from lungcad_transforms.apps.phantoms.tissues import (
    NODULE_KINDS,
    TISSUES,
    CTPhantom,
    MRPhantom,
    Nodule,
    PETPhantom,
)
