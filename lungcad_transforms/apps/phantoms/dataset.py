"""Phantom datasets on disk: CT scans, nodule labels, lung masks, LUNA16 annotations and a MONAI datalist.

:func:`write_phantom_dataset` writes one (atomically, identical files for identical arguments);
:func:`ensure_phantom_dataset` is what a bundle config calls: it writes the dataset once, under a
cross-process lock, and reuses it afterwards.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lungcad_transforms.apps.phantoms.ct import make_ct_phantom
from lungcad_transforms.data.dicom_writer import write_dicom_series
from lungcad_transforms.data.image_writer import write_metaimage, write_nifti
from lungcad_transforms.data.tables import write_annotations_csv
from lungcad_transforms.errors import InputError
from lungcad_transforms.utils.atomic import atomic_dir, atomic_file
from lungcad_transforms.utils.locks import dataset_lock

logger = logging.getLogger(__name__)

__all__ = ["write_phantom_dataset", "ensure_phantom_dataset"]


_FORMATS = {"nifti": ".nii.gz", "mhd": ".mhd", "mha": ".mha", "dicom": ""}


_DATASET_VERSION = 1


def _case_seed(seed: int, index: int) -> int:
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, index]).generate_state(1)[0])


def write_phantom_dataset(
    out_dir: str | os.PathLike,
    n_cases: int,
    seed: int = 0,
    shape: Sequence[int] = (128, 128, 128),
    formats: Sequence[str] = ("nifti",),
    *,
    spacing: Sequence[float] | None = None,
    n_nodules: int | None = None,
    nodule_kinds: Sequence[str] | None = None,
    fov_circle: bool = False,
    val_fraction: float = 0.2,
    test_fraction: float = 0.0,
    overwrite: bool = False,
) -> Path:
    """Write a synthetic chest-CT dataset with LUNA16-style annotations and a MONAI datalist.

    Layout of ``out_dir``::

        datalist.json        {"training": [...], "validation": [...], "test": [...]}
        annotations.csv      LUNA16 form, every nodule of every case (LPS mm)
        nodules.csv          the same rows plus the nodule kind
        phantom_dataset.json the arguments it was written with
        images/<seriesuid>.nii.gz | .mha | .mhd + .zraw    one per format asked for
        dicom/<seriesuid>/IM00001.dcm ...                  when "dicom" is asked for
        labels/<seriesuid>.nii.gz    nodule labels (0 background, n = n-th nodule of the case)
        lungs/<seriesuid>.nii.gz     ground-truth lungs (uint8)

    A datalist entry holds ``image`` (the first format asked for), ``image_<format>`` for each format,
    ``label``, ``lungs``, ``seriesuid`` and ``n_nodules``; paths are relative to the datalist's folder (as
    ``monai.data.load_decathlon_datalist`` expects). The whole folder is written atomically and nothing
    depends on the clock, so the same arguments give identical files. If ``out_dir`` already holds a
    dataset written with the same arguments it is reused as it is (cheap to call on every run).

    Args:
        out_dir: the dataset folder.
        n_cases: number of CT phantoms.
        seed: case ``i`` is drawn from ``(seed, i)``.
        shape, spacing, n_nodules, nodule_kinds, fov_circle: as for
            :func:`~lungcad_transforms.apps.phantoms.ct.make_ct_phantom` (spacing ``None``: drawn per case).
        formats: any of "nifti", "mhd", "mha", "dicom".
        val_fraction, test_fraction: share of the cases in "validation" and "test" (at least one
            validation case when there are two cases or more and ``val_fraction`` > 0).
        overwrite: replace an ``out_dir`` that holds something else.

    Returns:
        the path of ``datalist.json``.

    Raises:
        InputError: ``out_dir`` is a file, or holds other content and ``overwrite`` is false.

    Examples:
        >>> datalist = write_phantom_dataset("/tmp/lungcad_example_phantoms", n_cases=4, shape=(96, 96, 64))
        >>> from monai.data import load_decathlon_datalist
        >>> len(load_decathlon_datalist(datalist, data_list_key="training"))
        3
    """
    out_dir = Path(out_dir)
    formats = tuple(str(f).lower() for f in formats)
    unknown = [f for f in formats if f not in _FORMATS]
    if not formats or unknown:
        raise ValueError(f"formats must be a non-empty subset of {sorted(_FORMATS)}, got {formats}")
    if int(n_cases) < 1:
        raise ValueError(f"n_cases must be >= 1, got {n_cases}")
    if not (0 <= val_fraction and 0 <= test_fraction and val_fraction + test_fraction < 1):
        raise ValueError("val_fraction and test_fraction must be >= 0 and add up to less than 1")
    params = {
        "version": _DATASET_VERSION,
        "n_cases": int(n_cases),
        "seed": int(seed),
        "shape": [int(s) for s in shape],
        "formats": list(formats),
        "spacing": None if spacing is None else [float(s) for s in spacing],
        "n_nodules": None if n_nodules is None else int(n_nodules),
        "nodule_kinds": None if nodule_kinds is None else [str(k) for k in nodule_kinds],
        "fov_circle": bool(fov_circle),
        "val_fraction": float(val_fraction),
        "test_fraction": float(test_fraction),
    }
    datalist_path = out_dir / "datalist.json"
    manifest = out_dir / "phantom_dataset.json"
    if out_dir.exists():
        if not out_dir.is_dir():
            raise InputError(out_dir, "exists and is not a folder")
        if manifest.is_file() and datalist_path.is_file():
            try:
                same = json.loads(manifest.read_text()) == params
            except (OSError, ValueError):
                same = False
            if same:
                return datalist_path
        if any(out_dir.iterdir()) and not overwrite:
            raise InputError(
                out_dir, "holds other content than this phantom dataset; pass overwrite=True to replace it"
            )

    n = int(n_cases)
    n_test = int(round(n * test_fraction))
    n_val = int(round(n * val_fraction))
    if val_fraction > 0 and n >= 2:
        n_val = max(n_val, 1)
    n_val = min(n_val, max(n - 1 - n_test, 0))
    n_train = n - n_val - n_test
    splits = ["training"] * n_train + ["validation"] * n_val + ["test"] * n_test

    datalist: dict[str, list[dict[str, Any]]] = {"training": [], "validation": [], "test": []}
    annotations: list[dict[str, Any]] = []
    with atomic_dir(out_dir) as tmp:
        for i in range(n):
            ct = make_ct_phantom(
                shape, spacing, seed=_case_seed(seed, i), n_nodules=n_nodules, nodule_kinds=nodule_kinds,
                fov_circle=fov_circle,
            )  # fmt: skip
            uid = ct.seriesuid
            entry: dict[str, Any] = {}
            for fmt in formats:
                if fmt == "dicom":
                    rel = f"dicom/{uid}"
                    write_dicom_series(ct.hu, ct.spacing, ct.origin_lps, tmp / rel, "CT", seriesuid=uid)
                else:
                    rel = f"images/{uid}{_FORMATS[fmt]}"
                    writer = write_nifti if fmt == "nifti" else write_metaimage
                    writer(ct.hu, ct.spacing, ct.origin_lps, tmp / rel)
                entry.setdefault("image", rel)
                entry[f"image_{fmt}"] = rel
            entry["label"] = f"labels/{uid}.nii.gz"
            entry["lungs"] = f"lungs/{uid}.nii.gz"
            write_nifti(ct.nodule_labels, ct.spacing, ct.origin_lps, tmp / entry["label"])
            write_nifti(ct.lungs.astype(np.uint8), ct.spacing, ct.origin_lps, tmp / entry["lungs"])
            entry["seriesuid"] = uid
            entry["n_nodules"] = len(ct.nodules)
            datalist[splits[i]].append(entry)
            for nodule in ct.nodules:
                x, y, z = nodule.center_lps
                annotations.append(
                    {
                        "seriesuid": uid,
                        "coordX": x,
                        "coordY": y,
                        "coordZ": z,
                        "diameter_mm": nodule.diameter_mm,
                        "kind": nodule.kind,
                    }
                )
        write_annotations_csv(annotations, tmp / "annotations.csv")
        write_annotations_csv(annotations, tmp / "nodules.csv", extra_columns=("kind",))
        with atomic_file(tmp / "datalist.json") as f:
            f.write_text(json.dumps(datalist, indent=2) + "\n")
        with atomic_file(tmp / "phantom_dataset.json") as f:
            f.write_text(json.dumps(params, indent=2) + "\n")
    return datalist_path


def ensure_phantom_dataset(
    dataset_dir: str | os.PathLike,
    n_train: int = 24,
    n_val: int = 6,
    n_test: int = 6,
    seed: int = 0,
    shape: Sequence[int] = (128, 128, 128),
    formats: Sequence[str] = ("nifti",),
    **phantom_kwargs,
) -> str:
    """Create the synthetic dataset at ``dataset_dir`` once; return ``dataset_dir`` (for a config's ``dataset_dir``).

    Writes ``n_train + n_val + n_test`` chest-CT phantoms with nodule labels, lung masks, a MONAI datalist
    (``datalist.json``: "training", "validation", "test") and LUNA16 ``annotations.csv`` through
    :func:`write_phantom_dataset`, atomically and under a cross-process lock.
    A folder already holding this dataset is reused as it is; one holding a dataset written with other
    arguments is reused too (with a log line saying so), never silently rewritten.

    Args:
        dataset_dir: where the dataset lives (a bundle uses ``<bundle>/data/phantoms``).
        n_train, n_val, n_test: cases per split.
        seed: case ``i`` is drawn from ``(seed, i)``.
        shape: voxels per case; spacing is drawn per case like a real scanner (0.6-0.9 mm in-plane,
            0.625-2.5 mm slices) unless ``spacing=`` is passed.
        formats: image formats to write ("nifti", "mhd", "mha", "dicom"); the datalist's ``image`` is the first.
        phantom_kwargs: more arguments of ``write_phantom_dataset`` (``spacing``, ``n_nodules``, ...).

    Returns:
        ``str(dataset_dir)``.

    Raises:
        InputError: ``dataset_dir`` exists and holds something else than a phantom dataset.

    Examples:
        >>> root = ensure_phantom_dataset("/tmp/phantoms", n_train=2, n_val=1, n_test=1, shape=(64, 64, 48))  # doctest: +SKIP
        >>> sorted(json.load(open(root + "/datalist.json")))  # doctest: +SKIP
        ['test', 'training', 'validation']
    """
    dataset_dir = Path(dataset_dir)
    n_cases = int(n_train) + int(n_val) + int(n_test)
    if min(n_train, n_val, n_test) < 0 or n_train < 1:
        raise ValueError(f"need n_train >= 1 and n_val, n_test >= 0; got {n_train}, {n_val}, {n_test}")
    with dataset_lock(dataset_dir):
        datalist = dataset_dir / "datalist.json"
        manifest = dataset_dir / "phantom_dataset.json"
        if datalist.is_file() and manifest.is_file():
            written = json.loads(manifest.read_text())
            wanted = {"n_cases": n_cases, "seed": int(seed), "shape": [int(s) for s in shape]}
            if any(written.get(k) != v for k, v in wanted.items()):
                logger.info(
                    "reusing the synthetic dataset in %s (%s cases, seed %s, shape %s); delete it to get %s",
                    dataset_dir,
                    written.get("n_cases"),
                    written.get("seed"),
                    written.get("shape"),
                    wanted,
                )
            return str(dataset_dir)
        elif dataset_dir.exists() and any(dataset_dir.iterdir()):
            raise InputError(
                dataset_dir,
                "holds files but no synthetic dataset (no datalist.json / phantom_dataset.json); point dataset_dir "
                "at your prepared data, or remove this folder to let the bundle write its synthetic data",
            )
        logger.info(
            "writing the built-in synthetic dataset (%d chest CT phantoms) to %s", n_cases, dataset_dir
        )
        write_phantom_dataset(
            dataset_dir,
            n_cases,
            seed=seed,
            shape=shape,
            formats=formats,
            val_fraction=n_val / n_cases,
            test_fraction=n_test / n_cases,
            **phantom_kwargs,
        )
    return str(dataset_dir)
