"""What every dataset preparer (LIDC-IDRI, LUNA16) shares: sphere labels from annotation rows, the
prepared-dataset folder (labels on each scan's own grid, ``datalist.json``, ``annotations.csv``) and the
preparer scripts' command line."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from monai.data.utils import affine_to_spacing
from monai.utils import convert_to_numpy

from lungcad_transforms.data.coords import voxel_to_world, world_to_voxel
from lungcad_transforms.errors import InputError

__all__ = ["sphere_mask", "PreparedCase", "write_prepared_dataset", "add_prepare_arguments", "run_prepare"]


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


class PreparedCase(NamedTuple):
    """One scan of a prepared dataset.

    Attributes:
        entry: its datalist entry (``image``, ``seriesuid``); ``label`` is added when it is written.
        labels: ``(X, Y, Z)`` label map on the loaded (RAS) grid of the scan, 0 background, ``n`` nodule n.
        meta: the loaded scan's ``MetaTensor.meta`` (its ``affine`` and the file's own grid), so the label
            file is written on the scan file's voxel grid.
    """

    entry: dict[str, Any]
    labels: np.ndarray
    meta: Mapping[str, Any]


def write_prepared_dataset(
    out_dir: str | os.PathLike,
    cases: Sequence[PreparedCase],
    rows: Iterable[Mapping[str, Any]],
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    seed: int = 0,
    source: str = "",
) -> Path:
    """Write a prepared dataset folder atomically: ``labels/``, ``datalist.json`` and ``annotations.csv``.

    Each case's labels go to ``labels/<seriesuid>.nii.gz`` on the **scan file's own voxel grid** (same shape,
    affine and axis order, so the label overlays the DICOM series or MetaImage it was drawn on voxel by
    voxel; :class:`~lungcad_transforms.transforms.io.dictionary.LoadScand` brings both to RAS again),
    uint8 up to 255 nodules a scan, uint16 beyond. The cases are split by a seeded shuffle into
    training / validation / test (at least one training case).

    Args:
        out_dir: the folder (replaced if it exists; a failed run leaves the old one untouched).
        cases: the scans and their labels.
        rows: the nodules, LUNA16 ``annotations.csv`` rows.
        val_fraction, test_fraction, seed: the seeded split.
        source: where the data came from, stored as the datalist's ``"source"``.

    Returns:
        the path of ``datalist.json``.

    Examples:
        >>> from lungcad_transforms.data.image_reader import load_image  # doctest: +SKIP
        >>> scan = load_image("subset0/1.3.6.1.4.1.14519.5.2.1.6279.6001.1007.mhd")  # doctest: +SKIP
        >>> row = {"seriesuid": scan.meta["seriesuid"], "coordX": -60.2, "coordY": 42.1, "coordZ": -118.0, "diameter_mm": 8.3}  # doctest: +SKIP
        >>> labels = sphere_mask(scan.shape[1:], scan.affine, [row], label_each=True)  # doctest: +SKIP
        >>> case = PreparedCase({"image": "subset0/1.3.6.1.4.1.14519.5.2.1.6279.6001.1007.mhd", "seriesuid": row["seriesuid"]}, labels, scan.meta)  # doctest: +SKIP
        >>> write_prepared_dataset("luna16_prepared", [case], [row], val_fraction=0, test_fraction=0)  # doctest: +SKIP
        PosixPath('luna16_prepared/datalist.json')
    """
    from lungcad_transforms.data.image_writer import write_image
    from lungcad_transforms.data.tables import write_annotations_csv
    from lungcad_transforms.utils.atomic import atomic_dir, atomic_file

    out_dir = Path(out_dir)
    labels_of = [f"labels/{case.entry['seriesuid'].replace(os.sep, '_')}.nii.gz" for case in cases]
    # split first: an impossible split is refused before any label is written
    entries = [{**case.entry, "label": rel} for case, rel in zip(cases, labels_of, strict=True)]
    datalist: dict[str, Any] = _split(entries, val_fraction, test_fraction, seed)
    datalist["source"] = source
    with atomic_dir(out_dir) as tmp:
        for case, rel in zip(cases, labels_of, strict=True):
            labels = np.asarray(case.labels)
            # uint8 holds up to 255 nodules per scan; more (never seen in LIDC-IDRI) needs uint16
            dtype = np.uint8 if labels.max(initial=0) <= 255 else np.uint16
            write_image(labels, tmp / rel, like=case.meta, dtype=dtype)
        with atomic_file(tmp / "datalist.json") as f:
            f.write_text(json.dumps(datalist, indent=2) + "\n", encoding="utf-8")
        write_annotations_csv(list(rows), tmp / "annotations.csv")
    return out_dir / "datalist.json"


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
        prepare: :func:`~lungcad_transforms.apps.lidc.prepare.prepare_lidc_dataset` or
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
        >>> from lungcad_transforms.apps.lidc.prepare import prepare_lidc_dataset
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
