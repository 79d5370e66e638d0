"""Reading written images back, as a user's tools would: ITK as stored, ITK canonicalised to RAS, file digests."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
from monai.transforms import Compose, EnsureChannelFirst, LoadImage, Orientation

if TYPE_CHECKING:
    from lungcad_transforms.apps.phantoms.results import CTPhantom

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def load(path) -> np.ndarray:
    return LoadImage(reader="ITKReader", image_only=True)(str(path))


def load_ras(path):
    return Compose(
        [LoadImage(reader="ITKReader", image_only=True), EnsureChannelFirst(), Orientation(axcodes="RAS")]
    )(str(path))


def tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def assert_nodules_on_labels(phantom: CTPhantom, labels_ras) -> None:
    """Each nodule's LPS centre, mapped through the loaded image's RAS affine, lands on its label."""
    coords = pytest.importorskip("lungcad_transforms.data")
    centres = np.array([n.center_lps for n in phantom.nodules])
    index = coords.world_to_voxel(centres, labels_ras.affine)
    for number, ijk in enumerate(np.floor(index + 0.5).astype(int), start=1):
        assert int(labels_ras[0][tuple(ijk)]) == number
