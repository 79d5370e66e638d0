"""Hybrid training data: synthetic nodules inserted into a folder of real, unannotated chest CTs.

:func:`write_hybrid_dataset` turns any folder of chest CTs into a detection training set that both CT
bundles read: each background scan gives several cases (windows, flips, small deformations, nodules of
every kind placed inside its lungs), with voxel labels, LUNA16 annotations, labelled candidates (the
nodules and the scan's own nodule-like spots as hard negatives) and a MONAI datalist whose splits are
held out **by background scan**: no scan gives cases to two splits. :func:`ensure_hybrid_dataset` is what
a bundle config calls (written once, under a lock).
"""

from __future__ import annotations

import fnmatch
import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lungcad_transforms.errors import InputError

logger = logging.getLogger(__name__)

__all__ = ["write_hybrid_dataset", "ensure_hybrid_dataset"]

_VERSION = 1
_SPLITS = ("training", "validation", "test")


def _known_lesions(spec: Any) -> list[dict[str, Any]]:
    from lungcad_transforms.data.tables import read_annotations

    if spec is None:
        return []
    items = [spec] if isinstance(spec, (str, os.PathLike, Mapping)) else list(spec)
    rows: list[dict[str, Any]] = []
    for item in items:
        rows += [dict(item)] if isinstance(item, Mapping) else read_annotations(item)
    return rows


def _matches(entry: Mapping[str, Any], patterns: Sequence[str]) -> bool:
    image = entry["image"] if isinstance(entry["image"], str) else entry["image"][0]
    names = (str(entry["seriesuid"]), str(image))
    return any(fnmatch.fnmatch(n, p) or p in n for n in names for p in patterns)


def _assign_splits(
    entries: list[dict[str, Any]], test: Sequence[str] | None, val: Sequence[str] | None, seed: int
) -> list[str]:
    if test is not None or val is not None:
        return [
            "test" if test and _matches(e, test) else "validation" if val and _matches(e, val) else "training"
            for e in entries
        ]
    n = len(entries)
    n_test = 0 if n < 2 else max(1, n // 4)
    order = np.random.default_rng(seed).permutation(n)
    return ["test" if i in set(order[:n_test].tolist()) else "training" for i in range(n)]


def _case_uid(background_uid: str, index: int, seed: int) -> str:
    from pydicom.uid import generate_uid

    return generate_uid(entropy_srcs=["lungcad-hybrid", background_uid, str(index), str(seed)])


def write_hybrid_dataset(
    backgrounds: str | os.PathLike | Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    cases_per_background: int = 8,
    test_cases_per_background: int = 1,
    nodules_per_case: tuple[int, int] = (1, 4),
    window_mm: Sequence[float | None] | None = (128.0, 128.0, 64.0),
    test_backgrounds: Sequence[str] | None = None,
    val_backgrounds: Sequence[str] | None = None,
    val_fraction: float = 0.2,
    known_lesions: Any = None,
    kinds: Sequence[str] | None = None,
    diameter_range_mm: tuple[float, float] = (3.0, 30.0),
    hard_negatives_per_case: int = 20,
    seed: int = 0,
    overwrite: bool = False,
) -> Path:
    """Write a hybrid dataset (real backgrounds, synthetic nodules); return the path of its ``datalist.json``.

    Layout of ``out_dir``::

        datalist.json            {"training": [...], "validation": [...], "test": [...]}
        images/<split>/<uid>.nii.gz   the cases (int16 HU); labels/<uid>.nii.gz (0, n = n-th nodule);
                                 lungs/<uid>.nii.gz (LungMask of the case)
        annotations.csv          LUNA16: every inserted nodule (LPS mm); nodules.csv: plus kind, background
        excluded.csv             the backgrounds' own known lesions inside test cases (LUNA16
                                 annotations_excluded form: a hit there is neither true nor false positive)
        candidates.csv, candidates_<split>.csv   class 1: nodule centres (2 per nodule, jittered by up to
                                 30 % of the radius); class 0: the scans' own nodule-like spots
        seriesuids_<split>.csv   the cases of each split
        hybrid_dataset.json      the arguments, the background of each split, and what was skipped and why

    Training and validation cases are windows of ``window_mm`` (flipped, slightly deformed); test cases
    are the whole test scans (flipped), so figures on them are per scan. Splits are by background: every
    case of a scan goes to that scan's split. Validation comes from ``val_backgrounds`` when given,
    else from a ``val_fraction`` of the training cases (the same backgrounds: for model selection only).

    Args:
        backgrounds: folder(s) of chest CTs (any format :func:`~lungcad_transforms.data.find_images`
            finds) or files.
        out_dir: the dataset folder (written atomically).
        cases_per_background: training cases per training background.
        test_cases_per_background: cases per test background.
        nodules_per_case: the number of nodules of a case is drawn uniformly in this range (inclusive).
        window_mm: training window size (mm), an entry ``None`` for the whole extent along that axis;
            ``None``: whole scans.
        test_backgrounds, val_backgrounds: patterns (substring or glob of the seriesuid or path) of the
            backgrounds of the test / validation split; by default a quarter of the backgrounds (at
            least one when there are two or more) is test.
        val_fraction: see above.
        known_lesions: LUNA16 annotation rows, or CSV path(s), of lesions already in the backgrounds
            (real nodules: e.g. the LUNA16 ``annotations.csv``): kept out of training windows, excluded in test.
        kinds: nodule kinds to draw from (default all, weighted as in
            :data:`~lungcad_transforms.apps.hybrid.nodule_models.KIND_WEIGHTS`).
        diameter_range_mm: diameters are drawn from the LUNA16 distribution cut to this range.
        hard_negatives_per_case: class-0 candidates per case.
        seed: every random choice derives from it; the same arguments give the same dataset.
        overwrite: replace an ``out_dir`` that holds something else.

    Raises:
        InputError: no background is usable (each one's reason is logged and kept in the manifest), a
            background folder holds no image, or ``out_dir`` holds other content.
    """
    from lungcad_transforms.apps.hybrid.backgrounds import load_background
    from lungcad_transforms.apps.hybrid.cases import make_case
    from lungcad_transforms.data.image_reader import find_images
    from lungcad_transforms.data.tables import write_annotations_csv, write_candidates_csv, write_seriesuids
    from lungcad_transforms.utils.atomic import atomic_dir, atomic_file

    out = Path(out_dir)
    sources = [backgrounds] if isinstance(backgrounds, (str, os.PathLike)) else list(backgrounds)
    if not sources:
        raise InputError(str(out), "no background folder given")
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not overwrite)):
        raise InputError(out, "exists and holds other content; pass overwrite=True to replace it")
    entries = [e for s in sources for e in find_images(s) if e.get("modality") in ("", "CT")]
    entries.sort(key=lambda e: str(e["seriesuid"]))
    splits = _assign_splits(entries, test_backgrounds, val_backgrounds, seed)
    lesions = _known_lesions(known_lesions)
    settings = {
        "version": _VERSION, "backgrounds": [str(s) for s in sources], "cases_per_background": int(cases_per_background),
        "test_cases_per_background": int(test_cases_per_background), "nodules_per_case": list(nodules_per_case),
        "window_mm": None if window_mm is None else [None if w is None else float(w) for w in window_mm],
        "test_backgrounds": test_backgrounds, "val_backgrounds": val_backgrounds, "val_fraction": float(val_fraction),
        "kinds": None if kinds is None else list(kinds), "diameter_range_mm": list(diameter_range_mm),
        "hard_negatives_per_case": int(hard_negatives_per_case), "seed": int(seed), "n_known_lesions": len(lesions),
    }  # fmt: skip
    datalist: dict[str, list[dict[str, Any]]] = {s: [] for s in _SPLITS}
    tables: dict[str, list[dict[str, Any]]] = {"nodules": [], "excluded": [], "candidates": []}
    skipped: list[str] = []
    used: dict[str, list[str]] = {s: [] for s in _SPLITS}
    rng = np.random.default_rng(seed)
    with atomic_dir(out) as tmp:
        for entry, split in zip(entries, splits, strict=True):
            bg_rng = np.random.default_rng([seed, int(rng.integers(2**31))])
            try:
                bg = load_background(entry, lesions)
            except InputError as err:
                logger.warning("skipping background %s", err)
                skipped.append(str(err))
                continue
            n_cases = test_cases_per_background if split == "test" else cases_per_background
            # the last cases of a training scan validate (at least one of two or more, when asked for)
            n_val = int(round(n_cases * val_fraction)) if split == "training" else 0
            n_val = (
                min(max(n_val, int(val_fraction > 0 and n_cases >= 2)), n_cases - 1)
                if split == "training"
                else 0
            )
            made = 0
            for index in range(n_cases):
                case_split = split
                if split == "training" and val_backgrounds is None and index >= n_cases - n_val:
                    case_split = "validation"
                uid = _case_uid(bg.seriesuid, index, seed)
                try:
                    case = make_case(
                        bg, bg_rng, uid, None if split == "test" else window_mm, nodules_per_case, kinds,
                        diameter_range_mm, hard_negatives_per_case, tmp, case_split,
                    )  # fmt: skip
                except InputError as err:
                    logger.warning("skipping background %s", err)
                    skipped.append(str(err))
                    break
                if case is None:
                    skipped.append(
                        f"{bg.name}: case {index}: no window of the scan holds enough lung clear of its known lesions"
                    )
                    continue
                skipped += [f"{bg.name}: case {index}: {line}" for line in case.skipped]
                datalist[case_split].append(case.entry)
                for key in tables:
                    tables[key] += getattr(case, key)
                made += 1
            if made:
                used[split].append(bg.seriesuid)
        if not any(datalist.values()):
            raise InputError(
                ", ".join(str(s) for s in sources),
                "no usable background: " + ("; ".join(skipped) or "none found"),
            )
        write_annotations_csv(tables["nodules"], tmp / "annotations.csv")
        write_annotations_csv(tables["nodules"], tmp / "nodules.csv", extra_columns=("kind", "background"))
        write_annotations_csv(tables["excluded"], tmp / "excluded.csv")
        write_candidates_csv(tables["candidates"], tmp / "candidates.csv")
        for split, items in datalist.items():
            uids = {e["seriesuid"] for e in items}
            write_candidates_csv(
                [r for r in tables["candidates"] if r["seriesuid"] in uids], tmp / f"candidates_{split}.csv"
            )
            write_seriesuids([e["seriesuid"] for e in items], tmp / f"seriesuids_{split}.csv")
        with atomic_file(tmp / "datalist.json") as f:
            f.write_text(json.dumps(datalist, indent=2) + "\n", encoding="utf-8")
        manifest = {"settings": settings, "backgrounds": used, "skipped": skipped}
        with atomic_file(tmp / "hybrid_dataset.json") as f:
            f.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    for line in skipped:
        logger.info("hybrid dataset: skipped %s", line)
    return out / "datalist.json"


def ensure_hybrid_dataset(dataset_dir: str | os.PathLike, **kwargs: Any) -> str:
    """Write the hybrid dataset at ``dataset_dir`` once (under a lock) and return ``dataset_dir``.

    A folder already holding a hybrid dataset is reused as it is (a log line says so when it was made
    with other arguments). Arguments: those of :func:`write_hybrid_dataset` (``backgrounds`` required).

    Raises:
        InputError: ``dataset_dir`` holds something else, or no background is usable.
    """
    from lungcad_transforms.utils.locks import dataset_lock

    root = Path(dataset_dir)
    with dataset_lock(root):
        manifest = root / "hybrid_dataset.json"
        if manifest.is_file() and (root / "datalist.json").is_file():
            stored = json.loads(manifest.read_text(encoding="utf-8")).get("settings", {})
            if stored.get("seed") != kwargs.get("seed", 0) or stored.get("version") != _VERSION:
                logger.info(
                    "reusing the hybrid dataset in %s (made with %s); delete it to rebuild", root, stored
                )
            return str(root)
        if root.exists() and any(root.iterdir()):
            raise InputError(
                root,
                "holds files but no hybrid dataset (no hybrid_dataset.json); remove it or point elsewhere",
            )
        logger.info("writing the hybrid dataset (real backgrounds, synthetic nodules) to %s", root)
        write_hybrid_dataset(out_dir=root, overwrite=True, **kwargs)
    return str(root)
