"""Radiological slice montages with overlays."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from lungcad_transforms.errors import InputError
from lungcad_transforms.utils.atomic import atomic_file

__all__ = ["radiological_views", "save_montage"]


def radiological_views(volume: np.ndarray, center: Sequence[int]) -> dict[str, np.ndarray]:
    """Axial, coronal and sagittal 2-D slices of a RAS volume through ``center``, display-ready.

    Args:
        volume: array (X, Y, Z) in RAS orientation.
        center: voxel index (i, j, k) the three planes pass through.

    Returns:
        ``{"axial", "coronal", "sagittal"}`` arrays whose row 0 is the top of the displayed picture.

    Examples:
        >>> vol = np.zeros((4, 5, 6)); vol[0, 0, 0] = 1  # voxel at patient left-posterior-inferior
        >>> float(radiological_views(vol, (0, 0, 0))["axial"][-1, -1])  # drawn bottom right
        1.0
    """
    i, j, k = (int(c) for c in center)
    # flips: image left = patient right (largest i), top = anterior (largest j) / superior (largest k)
    return {
        "axial": volume[::-1, ::-1, k].T,
        "coronal": volume[::-1, j, ::-1].T,
        "sagittal": volume[i, ::-1, ::-1].T,
    }


def save_montage(
    path: str | os.PathLike,
    image: np.ndarray,
    overlay: np.ndarray | None = None,
    center: Sequence[int] | None = None,
    spacing: Sequence[float] = (1.0, 1.0, 1.0),
    window: tuple[float, float] = (-1000.0, 400.0),
    overlay_kind: str = "mask",
    title: str | None = None,
) -> Path:
    """Write a PNG with the axial, coronal and sagittal slices through ``center``.

    Args:
        path: the PNG to write (atomically).
        image: CT in HU, (X, Y, Z) or (1, X, Y, Z), RAS.
        overlay: optional mask (drawn as a translucent outline fill) or heatmap (drawn with a colour map),
            same spatial shape as ``image``.
        center: voxel the planes pass through; default the centre of mass of the overlay, else the middle.
        spacing: voxel size in mm, so that anisotropic scans are drawn with true proportions.
        window: HU display window; the default (-1000, 400) shows lung and soft tissue.
        overlay_kind: ``"mask"`` or ``"heatmap"``.
        title: optional figure title.

    Examples:
        >>> from lungcad_transforms.phantoms import make_ct_phantom  # doctest: +SKIP
        >>> ct = make_ct_phantom(shape=(96, 96, 64), seed=1)  # doctest: +SKIP
        >>> save_montage("/tmp/lungs.png", ct.hu, ct.lungs)  # doctest: +SKIP
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    image = np.asarray(image)
    image = image[0] if image.ndim == 4 else image
    if image.ndim != 3:
        raise InputError(path, f"a montage needs a 3-D volume, got an array of shape {image.shape}")
    if overlay is not None:
        overlay = np.asarray(overlay, dtype=np.float32)
        overlay = overlay[0] if overlay.ndim == 4 else overlay
        if overlay.shape != image.shape:
            raise InputError(path, f"overlay shape {overlay.shape} differs from image shape {image.shape}")
    if overlay_kind not in ("mask", "heatmap"):
        raise ValueError(f"overlay_kind must be 'mask' or 'heatmap', got {overlay_kind!r}")
    if center is None:
        if overlay is not None and overlay.max() > 0:
            weights = np.clip(overlay, 0, None)
            grid = np.indices(overlay.shape).reshape(3, -1)
            center = np.round(grid @ weights.ravel() / weights.sum()).astype(int)
        else:
            center = [s // 2 for s in image.shape]
    sx, sy, sz = (float(s) for s in spacing)
    # row spacing / column spacing per displayed plane, for true proportions
    aspects = {"axial": sy / sx, "coronal": sz / sx, "sagittal": sz / sy}
    views = radiological_views(image, center)
    overlay_views = radiological_views(overlay, center) if overlay is not None else {}
    fig, axes = plt.subplots(1, 3, figsize=(12, 4.4), facecolor="black")
    for ax, name in zip(axes, ("axial", "coronal", "sagittal"), strict=True):
        ax.imshow(
            views[name],
            cmap="gray",
            vmin=window[0],
            vmax=window[1],
            aspect=aspects[name],
            interpolation="nearest",
        )
        if name in overlay_views:
            ov = overlay_views[name]
            if overlay_kind == "mask":
                ax.imshow(
                    np.ma.masked_equal(ov > 0, False),
                    cmap="autumn",
                    alpha=0.3,
                    aspect=aspects[name],
                    interpolation="nearest",
                )
            else:
                ax.imshow(
                    np.ma.masked_less_equal(ov, 0.05 * max(float(ov.max()), 1e-6)),
                    cmap="jet",
                    alpha=0.45,
                    aspect=aspects[name],
                    interpolation="bilinear",
                )
        ax.set_title(name, color="white", fontsize=10)
        ax.axis("off")
    if title:
        fig.suptitle(title, color="white", fontsize=11)
    fig.tight_layout()
    path = Path(path)
    with atomic_file(path) as tmp:
        fig.savefig(tmp, dpi=100, facecolor="black", format="png")
    plt.close(fig)
    return path
