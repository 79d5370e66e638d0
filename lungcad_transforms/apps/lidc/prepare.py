"""LIDC-IDRI dataset preparation: consensus labels and a datalist the bundles train on."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from monai.data.utils import affine_to_spacing
from monai.utils import convert_to_numpy

from lungcad_transforms.apps.lidc.consensus import lidc_consensus
from lungcad_transforms.apps.lidc.xml import find_lidc_xml
from lungcad_transforms.data.coords import voxel_to_world, world_to_voxel
from lungcad_transforms.errors import InputError

logger = logging.getLogger(__name__)

__all__ = ["sphere_mask", "prepare_lidc_dataset", "add_prepare_arguments", "run_prepare"]


def sphere_mask(
    spatial_shape: Sequence[int],
    affine_ras: Any,
    nodules: Iterable[Mapping[str, Any]],
    label_each: bool = False,
) -> np.ndarray:
    """Mask of spheres at LUNA16 annotation rows, on the grid of a loaded scan.

    For users with LUNA16 only (no outlines): each ``annotations.csv`` row becomes a ball of its
    ``diameter_mm`` around ``(coordX, coordY, coordZ)``. Distances are measured in world mm, so a ball stays
    round on anisotropic or oblique grids.

    Args:
        spatial_shape: ``(X, Y, Z)`` of the loaded image.
        affine_ras: its voxel -> RAS affine (``MetaTensor.affine``).
        nodules: rows with ``coordX, coordY, coordZ`` (LPS mm) and ``diameter_mm``.
        label_each: label the n-th row's ball ``n`` (uint16) instead of 1 (uint8).

    Returns:
        ``(X, Y, Z)`` mask; rows outside the image leave it untouched.

    Examples:
        A 10 mm nodule in a 1 mm grid whose voxel (0, 0, 0) is at LPS (0, 0, 0):

        >>> affine = np.diag([-1.0, -1.0, 1.0, 1.0])  # RAS affine of an LPS-ordered grid
        >>> row = {"coordX": 20.0, "coordY": 20.0, "coordZ": 20.0, "diameter_mm": 10.0}
        >>> m = sphere_mask((40, 40, 40), affine, [row])
        >>> int(m.sum()), int(m[20, 20, 20])  # about 4/3 pi 5^3 = 524 voxels
        (515, 1)
    """
    affine = convert_to_numpy(affine_ras, dtype=np.float64)
    shape = tuple(int(s) for s in spatial_shape)
    out = np.zeros(shape, dtype=np.uint16 if label_each else np.uint8)
    step_mm = affine_to_spacing(affine, r=3, suppress_zeros=False)  # mm per voxel step along each axis
    for n, row in enumerate(nodules, start=1):
        centre_lps = np.array([float(row["coordX"]), float(row["coordY"]), float(row["coordZ"])])
        radius = float(row["diameter_mm"]) / 2.0
        centre = world_to_voxel(centre_lps, affine)[0]
        reach = np.ceil(radius / step_mm) + 1
        lo = np.maximum(np.floor(centre - reach), 0).astype(int)
        hi = np.minimum(np.ceil(centre + reach) + 1, shape).astype(int)
        if np.any(hi <= lo):
            continue
        grid = np.stack(
            np.meshgrid(*[np.arange(a, b) for a, b in zip(lo, hi, strict=True)], indexing="ij"), axis=-1
        ).reshape(-1, 3)
        world = voxel_to_world(grid, affine)
        ball = np.sum((world - centre_lps) ** 2, axis=1) <= radius * radius
        idx = tuple(grid[ball].T)
        out[idx] = n if label_each else 1
    return out


# ---------------------------------------------------------------------------------------------------------
# dataset preparation (the logic of scripts/prepare_lidc.py and scripts/prepare_luna16.py)
# ---------------------------------------------------------------------------------------------------------
def _save_label(mask: np.ndarray, affine_ras: np.ndarray, path: Path) -> None:
    """Write a label volume with the scan's RAS affine (what NIfTI stores), so it overlays the scan."""
    from lungcad_transforms.data.image_writer import save_nifti

    labels = np.asarray(mask)
    # uint8 holds up to 255 nodules per scan; more (never seen in LIDC-IDRI) would need uint16
    dtype = np.uint8 if labels.max(initial=0) <= 255 else np.uint16
    save_nifti(labels, affine_ras, path, dtype=dtype)


def _split(
    entries: list[dict[str, Any]], val_fraction: float, test_fraction: float, seed: int
) -> dict[str, list]:
    """Seeded shuffle into training / validation / test (at least one training case)."""
    from monai.data import partition_dataset

    if not (0 <= val_fraction and 0 <= test_fraction and val_fraction + test_fraction < 1):
        raise ValueError("val_fraction and test_fraction must be >= 0 and add up to less than 1")
    n = len(entries)
    n_test = min(int(round(n * test_fraction)), max(n - 1, 0))
    n_val = min(int(round(n * val_fraction)), max(n - 1 - n_test, 0))
    if n == 0:
        return {"training": [], "validation": [], "test": []}
    # the counts as ratios: partition_dataset rounds each share on its own and could drop a case
    training, validation, test = partition_dataset(
        entries, ratios=[n - n_val - n_test, n_val, n_test], shuffle=True, seed=seed
    )
    return {"training": training, "validation": validation, "test": test}


def _write_dataset(
    out_dir: Path,
    cases: list[tuple[dict[str, Any], np.ndarray, np.ndarray]],
    rows: list[dict[str, Any]],
    val_fraction: float,
    test_fraction: float,
    seed: int,
    source: str,
) -> Path:
    """Labels, ``datalist.json`` and ``annotations.csv`` of prepared cases, written as one atomic folder."""
    import json

    from lungcad_transforms.data.tables import write_annotations_csv
    from lungcad_transforms.utils.atomic import atomic_dir, atomic_file

    with atomic_dir(out_dir) as tmp:
        entries = []
        for entry, mask, affine in cases:
            rel = f"labels/{entry['seriesuid'].replace(os.sep, '_')}.nii.gz"
            _save_label(mask, affine, tmp / rel)
            entries.append({**entry, "label": rel})
        datalist = _split(entries, val_fraction, test_fraction, seed)
        datalist["source"] = source  # type: ignore[assignment]
        with atomic_file(tmp / "datalist.json") as f:
            f.write_text(json.dumps(datalist, indent=2) + "\n", encoding="utf-8")
        write_annotations_csv(rows, tmp / "annotations.csv")
    return out_dir / "datalist.json"


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
    ``<out_dir>/labels/<seriesuid>.nii.gz`` (50 %-consensus masks on the scan's grid, RAS affine; 0 is
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
        cases.append(({"image": entry["image"], "seriesuid": uid}, consensus.labels, consensus.affine))
        rows.extend(n.to_row(uid) for n in kept)
    if not cases:
        raise InputError(lidc_root, "holds no CT series with an LIDC-IDRI XML annotation file")
    return _write_dataset(out_dir, cases, rows, val_fraction, test_fraction, seed, f"LIDC-IDRI {lidc_root}")


# --------------------------------------------------------------------------------------------------
# command line (scripts/prepare_lidc.py, scripts/prepare_luna16.py)
# --------------------------------------------------------------------------------------------------
def add_prepare_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options every dataset preparer takes: the output folder and the seeded split.

    Args:
        parser: the preparer script's parser; its own source options are added by the script.
    """
    parser.add_argument("--out", required=True, help="output folder: labels/, datalist.json, annotations.csv")
    parser.add_argument("--val_fraction", type=float, default=0.15)
    parser.add_argument("--test_fraction", type=float, default=0.15)
    parser.add_argument("--seed", type=int, default=0)


def run_prepare(
    prog: str, prepare: Callable[..., Path], args: argparse.Namespace, *sources: Any, **options: Any
) -> int:
    """Run a dataset preparer from its script: ``prepare(*sources, args.out, **options, <split>)``.

    Args:
        prog: the script's name, for the error line.
        prepare: :func:`prepare_lidc_dataset` or
            :func:`~lungcad_transforms.apps.luna16.prepare.prepare_luna16_dataset`.
        args: the parsed options of :func:`add_prepare_arguments` (output folder and split).
        sources: the preparer's leading arguments (the download folder, an annotation file).
        options: more keyword arguments of ``prepare``.

    Returns:
        the exit status: 0, or 2 when the input is unusable (the error printed to stderr, no traceback).

    Examples:
        >>> parser = argparse.ArgumentParser()
        >>> add_prepare_arguments(parser)
        >>> args = parser.parse_args(["--out", "prepared"])
        >>> run_prepare("prepare_lidc", prepare_lidc_dataset, args, "/no/such/LIDC-IDRI")  # doctest: +SKIP
        2
    """
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        datalist = prepare(
            *sources, args.out, **options,
            val_fraction=args.val_fraction, test_fraction=args.test_fraction, seed=args.seed,
        )  # fmt: skip
    except InputError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {datalist}")
    return 0
