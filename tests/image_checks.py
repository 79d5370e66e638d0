"""Reading written images back, as a user's tools would: ITK as stored, ITK canonicalised to RAS, file digests."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from monai.transforms import Compose, EnsureChannelFirst, LoadImage, Orientation

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
