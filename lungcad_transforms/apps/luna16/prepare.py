"""LUNA16 dataset preparation: sphere labels from annotations.csv and a datalist."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from lungcad_transforms.apps.prepared.dataset import PreparedCase, sphere_mask, write_prepared_dataset
from lungcad_transforms.errors import InputError

logger = logging.getLogger(__name__)

__all__ = ["prepare_luna16_dataset"]


def prepare_luna16_dataset(
    luna16_root: str | os.PathLike,
    annotations: str | os.PathLike,
    out_dir: str | os.PathLike,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    seed: int = 0,
) -> Path:
    """Sphere nodule masks for LUNA16 scans (``subset*/<seriesuid>.mhd``) from ``annotations.csv``.

    Each scan gets ``<out_dir>/labels/<seriesuid>.nii.gz``
    (:func:`~lungcad_transforms.apps.prepared.dataset.sphere_mask` of its annotation rows on the scan file's
    own voxel grid, the n-th row of the scan labelled ``n``), an entry in ``datalist.json`` and its rows
    copied to ``<out_dir>/annotations.csv``.
    Scans without nodules are kept (they teach the network what is not a nodule).

    Args:
        luna16_root: folder holding the ``.mhd`` scans (any depth).
        annotations: LUNA16 ``annotations.csv``.
        out_dir: the prepared dataset folder (replaced if it exists).
        val_fraction, test_fraction, seed: the seeded split.

    Raises:
        InputError: no MetaImage scan under ``luna16_root``, or a malformed annotations file.

    Examples:
        >>> prepare_luna16_dataset("/data/LUNA16", "/data/LUNA16/annotations.csv", "/data/luna16_prepared")  # doctest: +SKIP
        PosixPath('/data/luna16_prepared/datalist.json')
    """
    from lungcad_transforms.data.image_reader import find_images, load_image
    from lungcad_transforms.data.tables import read_annotations

    luna16_root, out_dir = Path(luna16_root).resolve(), Path(out_dir)
    table = read_annotations(annotations)
    by_uid: dict[str, list[dict[str, Any]]] = {}
    for row in table:
        by_uid.setdefault(row["seriesuid"], []).append(row)
    cases, rows = [], []
    for entry in find_images(luna16_root):
        image_path = entry["image"]
        if not (isinstance(image_path, str) and image_path.lower().endswith((".mhd", ".mha"))):
            continue
        uid = entry["seriesuid"]
        try:
            image = load_image(entry)
        except InputError as err:
            logger.error("scan %s left out: %s", uid, err)
            continue
        nodules = by_uid.get(uid, [])
        mask = sphere_mask(image.shape[1:], image.affine, nodules, label_each=True)
        cases.append(PreparedCase({"image": image_path, "seriesuid": uid}, mask, image.meta))
        rows.extend(nodules)
        logger.info("scan %s: %d nodule sphere(s)", uid, len(nodules))
    if not cases:
        raise InputError(luna16_root, "holds no LUNA16 MetaImage scan (.mhd)")
    return write_prepared_dataset(
        out_dir, cases, rows, val_fraction, test_fraction, seed, f"LUNA16 {luna16_root}"
    )
