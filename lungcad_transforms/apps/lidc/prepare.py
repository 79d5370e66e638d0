"""LIDC-IDRI dataset preparation: consensus labels and a datalist the bundles train on."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from lungcad_transforms.apps.lidc.consensus import lidc_consensus
from lungcad_transforms.apps.lidc.xml import find_lidc_xml
from lungcad_transforms.apps.prepared.dataset import PreparedCase, write_prepared_dataset
from lungcad_transforms.errors import InputError

logger = logging.getLogger(__name__)

__all__ = ["prepare_lidc_dataset"]


def _series_folder(image: Any) -> Path:
    return Path(image[0]).parent if isinstance(image, (list, tuple)) else Path(image)


def prepare_lidc_dataset(
    lidc_root: str | os.PathLike,
    out_dir: str | os.PathLike,
    level: float = 0.5,
    min_readers: int = 1,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    seed: int = 0,
) -> Path:
    """Consensus nodule masks for every LIDC-IDRI CT series under ``lidc_root``, and a MONAI datalist.

    Each CT series that has an LIDC XML (matched by SeriesInstanceUID anywhere under ``lidc_root``) gets
    ``<out_dir>/labels/<seriesuid>.nii.gz`` (50 %-consensus masks on the series' own voxel grid; 0 is
    background and ``n`` the consensus of :attr:`LidcConsensus.nodules` ``[n - 1]``, so a training pipeline
    can sample every nodule equally and still binarise with ``label > 0``),
    an entry in ``<out_dir>/datalist.json`` ("training" / "validation" / "test"; ``image`` is the DICOM
    series, left where it is) and one row per nodule with a consensus in the scan in
    ``<out_dir>/annotations.csv`` (LUNA16 form, centred on the consensus). Series without XML, and series
    that fail to load, are logged and left out. The folder is written atomically.

    Args:
        lidc_root: the LIDC-IDRI download (DICOM series at any depth, XML files beside them or elsewhere).
        out_dir: the prepared dataset folder (replaced if it exists).
        level, min_readers: as :func:`lidc_consensus` (LUNA16 kept nodules of 3 or more readers).
        val_fraction, test_fraction, seed: the seeded split.

    Returns:
        the path of ``datalist.json``.

    Raises:
        InputError: no CT series with an LIDC XML under ``lidc_root``.

    Examples:
        >>> prepare_lidc_dataset("/data/LIDC-IDRI", "/data/lidc_prepared")  # doctest: +SKIP
        PosixPath('/data/lidc_prepared/datalist.json')
    """
    from lungcad_transforms.data.image_reader import find_images, load_image

    # absolute, so the datalist's image paths do not depend on the folder the script was run from
    lidc_root, out_dir = Path(lidc_root).resolve(), Path(out_dir)
    xml_for = find_lidc_xml(lidc_root)
    cases, rows = [], []
    for entry in find_images(lidc_root):
        uid = entry["seriesuid"]
        if entry.get("modality") not in ("CT", ""):
            continue
        if uid not in xml_for:
            logger.info(
                "%s: no LIDC XML for series %s: left out",
                entry["image"] if isinstance(entry["image"], str) else entry["image"][0],
                uid,
            )
            continue
        try:
            image = load_image(entry)
            consensus = lidc_consensus(
                xml_for[uid], _series_folder(entry["image"]), image, level=level, min_readers=min_readers
            )
        except InputError as err:
            logger.error("series %s left out: %s", uid, err)
            continue
        kept = [n for n in consensus.nodules if n.consensus_voxels]
        logger.info(
            "series %s: %d nodule(s) with a consensus in the scan (%d outlined in the XML)",
            uid,
            len(kept),
            len(consensus.nodules),
        )
        cases.append(PreparedCase({"image": entry["image"], "seriesuid": uid}, consensus.labels, image.meta))
        rows.extend(n.to_row(uid) for n in kept)
    if not cases:
        raise InputError(lidc_root, "holds no CT series with an LIDC-IDRI XML annotation file")
    return write_prepared_dataset(
        out_dir, cases, rows, val_fraction, test_fraction, seed, f"LIDC-IDRI {lidc_root}"
    )
