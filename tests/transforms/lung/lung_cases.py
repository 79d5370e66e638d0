"""Shared cases of the lung-mask tests: a small synthetic chest, Dice, and loading a real scan in RAS."""

from __future__ import annotations

import numpy as np
import torch
from monai.data import MetaTensor
from monai.transforms import LoadImage, Orientation

__all__ = ["as_bool", "dice", "load_ras", "synthetic_chest"]


def dice(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    return 2.0 * np.count_nonzero(a & b) / (np.count_nonzero(a) + np.count_nonzero(b))


def as_bool(mask) -> np.ndarray:
    return np.asarray(mask.numpy() if isinstance(mask, torch.Tensor) else mask).astype(bool)


def synthetic_chest(
    shape: tuple[int, int, int] = (96, 80, 24),
    lung_slices: slice = slice(None),
    *,
    trachea: bool = False,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """A small chest CT (X, Y, Z; y grows towards the back) with two separate lungs holding vessels, a
    patient table behind the body, noise; returns (int16 HU, ground-truth lungs incl. vessels)."""
    nx, ny, nz = shape
    x, y = np.arange(nx)[:, None], np.arange(ny)[None, :]
    hu = np.full(shape, -1000.0, np.float32)
    body = ((x - 48) / 42.0) ** 2 + ((y - 36) / 29.0) ** 2 <= 1
    hu[body] = 40.0
    hu[4:92, 70:73] = 300.0  # table
    lung_2d = np.zeros((nx, ny), bool)
    for cx in (29, 67):
        lung_2d |= ((x - cx) / 13.0) ** 2 + ((y - 36) / 19.0) ** 2 <= 1
    lungs = np.zeros(shape, bool)
    lungs[:, :, lung_slices] = lung_2d[:, :, None]
    hu[lungs] = -850.0
    # vessels and a nodule well inside the lungs: holes that the mask must fill
    for cx, cy in ((29, 30), (67, 44), (25, 40)):
        vessel = lungs & (((x - cx) ** 2 + (y - cy) ** 2) <= 4)[:, :, None]
        hu[vessel] = 30.0
    if trachea:
        tube = ((x - 48) ** 2 + (y - 26) ** 2 <= 9)[:, :, None] & (np.arange(nz) >= nz // 2)
        bronchi = np.zeros(shape, bool)
        bronchi[29:68, 24:29, nz // 2 : nz // 2 + 2] = True
        hu[tube | bronchi] = -1000.0
        lungs |= tube | bronchi
    hu += np.random.default_rng(seed).normal(0, 15, shape).astype(np.float32)
    return np.clip(hu, -1024, 3071).astype(np.int16), lungs


def load_ras(path) -> MetaTensor:
    image = LoadImage(reader="ITKReader", ensure_channel_first=True)(str(path))
    return Orientation(axcodes="RAS")(image)
