"""Candidate tables for phantom scans: true nodules and hard negatives."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from lungcad_transforms.data.tables import write_candidates_csv
from lungcad_transforms.utils.atomic import atomic_dir, atomic_file

logger = logging.getLogger(__name__)

__all__ = ["HARD_NEGATIVE_KINDS", "phantom_candidates", "ensure_fp_dataset"]


HARD_NEGATIVE_KINDS: tuple[str, ...] = (
    "vessel_crossing",
    "vessel",
    "airway_wall",
    "pleura",
    "bone",
    "parenchyma",
)


_DEFAULT_NEGATIVES = {
    "vessel_crossing": 10,
    "vessel": 6,
    "airway_wall": 5,
    "pleura": 6,
    "bone": 5,
    "parenchyma": 4,
}


_COMPLETE = "datalist.json"


def _pick(
    rng: np.random.Generator,
    voxels: np.ndarray,
    count: int,
    spacing: np.ndarray,
    min_separation_mm: float,
    taken: list[np.ndarray],
    priority: np.ndarray | None = None,
) -> list[np.ndarray]:
    """Choose up to ``count`` voxels, each ``min_separation_mm`` from the others and from ``taken``.

    With ``priority``, voxels are visited from the highest priority down (ties and near-ties shuffled),
    else in random order.
    """
    if len(voxels) == 0 or count <= 0:
        return []
    order = rng.permutation(len(voxels))
    if priority is not None:
        jitter = rng.uniform(0, 1e-3, len(voxels))
        order = np.argsort(-(priority + jitter), kind="stable")
    chosen: list[np.ndarray] = []
    placed = [np.asarray(t, dtype=np.float64) * spacing for t in taken]
    for idx in order[: max(count * 200, 2000)]:
        point = voxels[idx].astype(np.float64)
        mm = point * spacing
        if all(np.sum((mm - p) ** 2) >= min_separation_mm**2 for p in placed):
            chosen.append(point)
            placed.append(mm)
            if len(chosen) == count:
                break
    return chosen


def phantom_candidates(
    phantom: Any,
    seed: int = 0,
    positives_per_nodule: int = 2,
    negatives: dict[str, int] | None = None,
    clearance_mm: float = 4.0,
    min_separation_mm: float = 6.0,
) -> list[dict[str, Any]]:
    """LUNA16 candidate rows for one CT phantom: jittered nodule centres and hard negatives.

    Args:
        phantom: a ``phantoms.CTPhantom`` (with its ``tissues`` map).
        seed: seeds the jitter and the choice of negatives.
        positives_per_nodule: class-1 candidates per nodule.
        negatives: how many class-0 candidates of each kind in :data:`HARD_NEGATIVE_KINDS` (default
            10 vessel crossings, 6 vessels, 5 airway walls, 6 pleura, 5 bone, 4 parenchyma).
        clearance_mm: a negative lies at least this far outside every nodule (beyond its radius).
        min_separation_mm: negatives keep at least this distance from each other.

    Returns:
        rows ``{"seriesuid", "coordX", "coordY", "coordZ", "class", "kind"}`` in LPS world mm.

    Examples:
        >>> from lungcad_transforms.apps.phantoms.ct import make_ct_phantom
        >>> ct = make_ct_phantom((96, 96, 64), spacing=(1.5, 1.5, 2.0), seed=3, n_nodules=2)
        >>> rows = phantom_candidates(ct, seed=3)
        >>> sum(r["class"] for r in rows), {r["kind"] for r in rows if r["class"] == 0} <= set(HARD_NEGATIVE_KINDS)
        (4, True)
    """
    from lungcad_transforms.apps.phantoms.tissues import TISSUES

    if phantom.tissues is None:
        raise ValueError("the phantom carries no tissue map; make it with phantoms.make_ct_phantom")
    rng = np.random.default_rng(seed)
    counts = dict(_DEFAULT_NEGATIVES if negatives is None else negatives)
    spacing = np.asarray(phantom.spacing, dtype=np.float64)
    affine = phantom.affine_lps()  # phantom index -> LPS world (no axis flips: the arrays are in LPS order)
    tissues = phantom.tissues
    lungs = np.asarray(phantom.lungs, dtype=bool)
    rows: list[dict[str, Any]] = []

    def add(voxel: np.ndarray, label: int, kind: str) -> None:
        world = affine[:3, :3] @ voxel + affine[:3, 3]
        rows.append({"seriesuid": phantom.seriesuid, "coordX": round(float(world[0]), 3),
                     "coordY": round(float(world[1]), 3), "coordZ": round(float(world[2]), 3),
                     "class": label, "kind": kind})  # fmt: skip

    centres_vox = []
    for nodule in phantom.nodules:
        centre = (np.asarray(nodule.center_lps) - affine[:3, 3]) / spacing
        centres_vox.append(centre)
        radius = nodule.diameter_mm / 2.0
        for _ in range(positives_per_nodule):
            direction = rng.normal(size=3)
            direction /= max(np.linalg.norm(direction), 1e-9)
            offset_mm = direction * radius * 0.3 * rng.uniform(0, 1) ** (1 / 3)
            add(centre + offset_mm / spacing, 1, nodule.kind)

    # where a negative may not go: inside any nodule grown by its radius plus the clearance
    keep_out = np.zeros(tissues.shape, dtype=bool)
    grid = np.indices(tissues.shape, sparse=True)
    for nodule, centre in zip(phantom.nodules, centres_vox, strict=True):
        reach = nodule.diameter_mm / 2.0 + clearance_mm
        d2 = sum(((g - c) * s) ** 2 for g, c, s in zip(grid, centre, spacing, strict=True))
        keep_out |= d2 < reach**2
    # stay clear of the scan border so every scale of the patch holds anatomy
    margin = np.maximum(np.ceil(8.0 / spacing).astype(int), 1)
    border = np.ones(tissues.shape, dtype=bool)
    border[margin[0] : -margin[0], margin[1] : -margin[1], margin[2] : -margin[2]] = False
    allowed = ~keep_out & ~border

    near_lungs = ndimage.binary_dilation(lungs, iterations=max(int(round(6.0 / spacing.min())), 1))
    vessel = (tissues == TISSUES["vessel"]) & lungs
    airway_wall = tissues == TISSUES["airway_wall"]
    bone = np.isin(tissues, [TISSUES["cortical_bone"], TISSUES["marrow"], TISSUES["cartilage"]])
    pleura = lungs & ~ndimage.binary_erosion(lungs) & (tissues == TISSUES["lung"])
    parenchyma = (tissues == TISSUES["lung"]) & ~ndimage.binary_dilation(vessel, iterations=2)
    # vessel crossings and branchings: vessel voxels with the most vessel within ~5 mm
    window = np.maximum(np.round(5.0 / spacing).astype(int), 1) * 2 + 1
    density = ndimage.uniform_filter(vessel.astype(np.float32), size=tuple(int(w) for w in window))

    taken = list(centres_vox)
    regions = {
        "vessel_crossing": (vessel & allowed, density),
        "vessel": (vessel & allowed, None),
        "airway_wall": (airway_wall & near_lungs & allowed, None),
        "pleura": (pleura & allowed, None),
        "bone": (bone & near_lungs & allowed, None),
        "parenchyma": (parenchyma & allowed, None),
    }
    for kind in HARD_NEGATIVE_KINDS:
        count = int(counts.get(kind, 0))
        mask, priority_map = regions[kind]
        voxels = np.argwhere(mask)
        priority = priority_map[mask] if priority_map is not None else None
        for voxel in _pick(rng, voxels, count, spacing, min_separation_mm, taken, priority):
            add(voxel, 0, kind)
            taken.append(voxel)
    return rows


def ensure_fp_dataset(
    dataset_dir: str | os.PathLike,
    n_train: int = 24,
    n_val: int = 4,
    n_test: int = 8,
    shape: Sequence[int] = (128, 128, 96),
    spacing: Sequence[float] | None = (1.2, 1.2, 1.5),
    seed: int = 2024,
    positives_per_nodule: int = 2,
    negatives: dict[str, int] | None = None,
) -> str:
    """Create the embedded phantom dataset in ``dataset_dir`` unless it is already there; return the folder.

    Args:
        dataset_dir: the folder (created complete, or left alone when it already holds a dataset).
        n_train, n_val, n_test: scans per split (the test scans are held out from training and model
            selection).
        shape: voxels of each phantom scan.
        spacing: voxel size in mm (None: drawn per scan like a real scanner).
        seed: case ``i`` is ``make_ct_phantom(seed=seed + i)``.
        positives_per_nodule, negatives: passed to :func:`phantom_candidates`.

    Returns:
        ``dataset_dir``, holding ``datalist.json`` (``{"training": [...], "validation": [...], "test":
        [...]}``, entries ``{"image": "images/<split>/<seriesuid>.nii.gz", "seriesuid": ...}``),
        ``candidates.csv`` (all scans) and ``candidates_<split>.csv``, ``annotations.csv``,
        ``seriesuids_<split>.csv`` and the scans under
        ``images/<split>/`` (so a split's folder can be given to inference as it is).

    Examples:
        >>> root = ensure_fp_dataset("/tmp/fp_phantoms", n_train=2, n_val=1, n_test=1,  # doctest: +SKIP
        ...                          shape=(64, 64, 48), spacing=(1.5, 1.5, 2.0))
        >>> json.loads((Path(root) / "datalist.json").read_text())["test"][0]["image"]  # doctest: +SKIP
        'images/test/1.2.826.0.1.3680043.8.498.1234.nii.gz'
    """
    from lungcad_transforms.apps.phantoms.ct import make_ct_phantom
    from lungcad_transforms.data.image_writer import write_nifti
    from lungcad_transforms.data.tables import write_annotations_csv
    from lungcad_transforms.utils.locks import dataset_lock

    root = Path(dataset_dir)
    datalist = root / _COMPLETE
    settings = {
        "n_train": int(n_train), "n_val": int(n_val), "n_test": int(n_test), "shape": [int(s) for s in shape],
        "spacing": None if spacing is None else [float(s) for s in spacing], "seed": int(seed),
        "positives_per_nodule": int(positives_per_nodule), "negatives": negatives,
    }  # fmt: skip
    with dataset_lock(root):
        if datalist.is_file():
            stored = json.loads(datalist.read_text(encoding="utf-8")).get("settings")
            if stored != settings:
                logger.warning("%s was made with other settings (%s); using it as it is", root, stored)
            return str(root)
        logger.info("creating the embedded FP-reduction phantom dataset in %s", root)
        with atomic_dir(root) as tmp:
            for split in ("training", "validation", "test"):
                (tmp / "images" / split).mkdir(parents=True)
            splits: dict[str, list[dict[str, str]]] = {"training": [], "validation": [], "test": []}
            names = ["training"] * n_train + ["validation"] * n_val + ["test"] * n_test
            all_rows: list[dict[str, Any]] = []
            nodules: list[dict[str, Any]] = []
            for i, split in enumerate(names):
                ct = make_ct_phantom(tuple(shape), spacing=spacing, seed=seed + i)
                image = write_nifti(
                    ct.hu, ct.spacing, ct.origin_lps, tmp / "images" / split / f"{ct.seriesuid}.nii.gz"
                )
                splits[split].append(
                    {"image": f"images/{split}/{Path(image).name}", "seriesuid": ct.seriesuid}
                )
                all_rows += phantom_candidates(ct, seed=seed + i, positives_per_nodule=positives_per_nodule,
                                               negatives=negatives)  # fmt: skip
                nodules += [{"seriesuid": ct.seriesuid, "coordX": n.center_lps[0], "coordY": n.center_lps[1],
                             "coordZ": n.center_lps[2], "diameter_mm": n.diameter_mm} for n in ct.nodules]  # fmt: skip
            write_candidates_csv(all_rows, tmp / "candidates.csv")
            for split, entries in splits.items():
                uids = {e["seriesuid"] for e in entries}
                write_candidates_csv(
                    [r for r in all_rows if r["seriesuid"] in uids], tmp / f"candidates_{split}.csv"
                )
            write_annotations_csv(nodules, tmp / "annotations.csv")
            for split, entries in splits.items():
                with atomic_file(tmp / f"seriesuids_{split}.csv") as f:
                    f.write_text("".join(f"{e['seriesuid']}\n" for e in entries), encoding="utf-8")
            content = {
                **splits,
                "settings": settings,
                "candidates": "candidates.csv",
                "annotations": "annotations.csv",
            }
            with atomic_file(tmp / _COMPLETE) as f:
                f.write_text(json.dumps(content, indent=2) + "\n", encoding="utf-8")
    return str(root)
