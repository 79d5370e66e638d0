"""Candidates of many scans as multi-scale patches, each scan read once."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.data import MetaTensor
from monai.utils import convert_to_numpy

from lungcad_transforms.data.datasets import _with_seriesuid, resolve_scans
from lungcad_transforms.data.tables import read_candidates_lenient
from lungcad_transforms.errors import InputError
from lungcad_transforms.transforms.spatial.functional import (
    DEFAULT_HU_WINDOW,
    DEFAULT_PATCH_SIZE,
    DEFAULT_SCALES_MM,
    PATCH_KEYS,
    _check_scales,
    extract_multiscale_patches,
)
from lungcad_transforms.utils.atomic import atomic_file

logger = logging.getLogger(__name__)

__all__ = ["load_extra_positives", "MultiScalePatchDataset"]


_CACHE_VERSION = 1


def load_extra_positives(spec: Any) -> list[dict[str, Any]]:
    """The extra-positives hook: resolve the ``extra_positives`` config value into entries.

    The CT-GAN bundle (or any other generator of synthetic nodules) plugs in here. ``spec`` is one of:

    - ``None`` / ``""``: no extra positives;
    - a callable: called with no arguments, returns an iterable of entries;
    - a path to a JSON datalist (a list of entries, or a dict whose lists are entries), relative
      ``image`` / ``patches`` paths being relative to the JSON file;
    - a path to one ``.npz`` file of patches;
    - a list of entries.

    An entry is either precomputed patches, ``{"patches": "x.npz"}`` holding arrays ``patch_s1``,
    ``patch_s2``, ``patch_s3`` of shape (*patch_size) or (M, *patch_size) sampled at this bundle's
    scales with intensities already in [0, 1] (:func:`extract_multiscale_patches` makes them), or the
    same arrays inline; or a scan with a synthetic nodule and its centre, ``{"image": path,
    "seriesuid": ..., "coordX": ..., "coordY": ..., "coordZ": ...}`` (LPS mm), cut like any candidate.
    All extra positives get class 1 and are used for training only.

    Examples:
        >>> load_extra_positives(None)
        []
        >>> load_extra_positives(lambda: [{"patch_s1": np.zeros((16, 16, 16))}])[0].keys()
        dict_keys(['patch_s1'])
    """
    if spec is None or spec == "" or spec == []:
        return []
    if callable(spec):
        return [dict(e) for e in spec()]
    if isinstance(spec, (str, os.PathLike)):
        path = Path(spec)
        if not path.is_file():
            raise InputError(path, "extra_positives file does not exist")
        if path.suffix == ".npz":
            return [{"patches": str(path)}]
        try:
            content = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise InputError(path, f"extra_positives is not a valid JSON datalist: {err}") from err
        entries = (
            [e for value in content.values() if isinstance(value, list) for e in value]
            if isinstance(content, dict)
            else content
        )
        out = []
        for entry in entries:
            item = dict(entry)
            for key in ("image", "patches"):
                if key in item and not Path(str(item[key])).is_absolute():
                    item[key] = str(path.parent / str(item[key]))
            out.append(item)
        return out
    return [dict(e) for e in spec]


# --------------------------------------------------------------------------------------------------
# the dataset
# --------------------------------------------------------------------------------------------------
class MultiScalePatchDataset(torch.utils.data.Dataset):
    """Candidates of many scans as multi-scale patches; each scan is read once (or never, when cached).

    Args:
        scans: folder, datalist JSON, or list of ``{"image", "seriesuid"}`` (see :func:`resolve_scans`).
        candidates: a LUNA16 candidates CSV (``seriesuid,coordX,coordY,coordZ[,class][,probability]...``)
            or a list of such dicts.
        scales_mm, patch_size, hu_window: patch geometry (see :func:`extract_multiscale_patches`).
        transform: MONAI transform applied to each item (augmentation, ``ConcatItemsd``).
        cache_dir: folder for per-scan patch caches (None: memory only).
        extra_positives: the extra-positives hook (see :func:`load_extra_positives`).
        require_labels: every candidate must have a ``class`` (training / evaluation).
        lenient: report and skip malformed rows of a CSV instead of raising (inference).
        ignore_unknown_series: drop rows of series that are not among ``scans`` without reporting them
            (one LUNA16 candidates file serves all splits); by default each is reported.

    Candidates whose series has no scan, or whose centre lies outside their scan, are reported
    (logged, and listed in ``skipped``) and left out; the others are kept.

    Items are dicts: ``patch_s1``, ``patch_s2``, ``patch_s3`` (MetaTensor (1, *patch_size) with the
    patch's RAS affine), ``label`` (float tensor (1,), -1 when unknown) and ``index`` (into ``records``).

    Examples:
        >>> ds = MultiScalePatchDataset("phantoms/", "phantoms/candidates.csv")  # doctest: +SKIP
        >>> item = ds[0]  # doctest: +SKIP
        >>> item["patch_s3"].shape, ds.records[item["index"]]["seriesuid"]  # doctest: +SKIP
        (torch.Size([1, 20, 20, 12]), '1.2.826.0.1.3680043.8.498.1')
    """

    def __init__(
        self,
        scans: str | os.PathLike | Sequence[Mapping[str, Any]],
        candidates: str | os.PathLike | Sequence[Mapping[str, Any]],
        scales_mm: Sequence[Sequence[float]] = DEFAULT_SCALES_MM,
        patch_size: Sequence[int] = DEFAULT_PATCH_SIZE,
        hu_window: tuple[float, float] | None = DEFAULT_HU_WINDOW,
        transform: Callable | None = None,
        cache_dir: str | os.PathLike | None = None,
        extra_positives: Any = None,
        require_labels: bool = True,
        lenient: bool = False,
        ignore_unknown_series: bool = False,
    ) -> None:
        self.scales_mm = [tuple(float(v) for v in s) for s in _check_scales(scales_mm, patch_size)[0]]
        self.patch_size = tuple(int(s) for s in patch_size)
        self.hu_window = None if hu_window is None else (float(hu_window[0]), float(hu_window[1]))
        self.transform = transform
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.skipped: list[dict[str, Any]] = []
        self.scans = resolve_scans(scans)
        self.scan_geometry: dict[str, dict[str, Any]] = {}
        rows = self._read_rows(candidates, require_labels, lenient)
        self.records: list[dict[str, Any]] = []
        chunks: list[np.ndarray] = []
        affine_chunks: list[np.ndarray] = []
        by_series: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            by_series.setdefault(str(row["seriesuid"]), []).append(row)
        known = {str(s["seriesuid"]): s for s in self.scans}
        for uid, uid_rows in by_series.items():
            if uid not in known and not ignore_unknown_series:
                for row in uid_rows:
                    self._skip(row, f"series {uid} has no scan among the {len(self.scans)} given")
        for scan in self.scans:
            uid = str(scan["seriesuid"])
            if uid not in by_series:
                continue
            patches, affines, kept = self._scan_patches(scan, by_series[uid])
            for row in kept:
                self.records.append({**row, "synthetic": False})
            chunks.append(patches)
            affine_chunks.append(affines)
        for patches, affines, rows_extra in self._extra_positive_patches(extra_positives):
            self.records.extend(rows_extra)
            chunks.append(patches)
            affine_chunks.append(affines)
        n_scales = len(self.scales_mm)
        self.patches = (
            np.concatenate(chunks) if chunks else np.zeros((0, n_scales, *self.patch_size), np.float16)
        )
        self.affines = np.concatenate(affine_chunks) if affine_chunks else np.zeros((0, n_scales, 4, 4))
        self.labels = np.array([int(r.get("class", -1)) for r in self.records], dtype=np.int64)
        if self.skipped:
            logger.warning("%d candidate(s) skipped (see the log lines above)", len(self.skipped))

    # -- reading -----------------------------------------------------------------------------------
    def _read_rows(self, candidates: Any, require_labels: bool, lenient: bool) -> list[dict[str, Any]]:
        from lungcad_transforms.data.tables import read_candidates

        if isinstance(candidates, (str, os.PathLike)):
            source = str(candidates)
            if lenient:
                rows, problems = read_candidates_lenient(candidates)
                for problem in problems:
                    logger.warning(problem)
                    self.skipped.append({"reason": problem, "source": source})
            else:
                rows = read_candidates(candidates)
                for i, row in enumerate(rows):
                    row.setdefault("line", i + 2)
        else:
            source = "<candidates>"
            rows = [dict(r) for r in candidates]
        out = []
        for i, row in enumerate(rows):
            row.setdefault("line", i + 2)
            if require_labels and "class" not in row:
                raise InputError(
                    source, f"line {row['line']}: no 'class' value; training needs labelled candidates"
                )
            if "class" in row and int(row["class"]) not in (0, 1):
                raise InputError(source, f"line {row['line']}: class is {row['class']}, expected 0 or 1")
            row["source"] = source
            out.append(row)
        return out

    def _skip(self, row: Mapping[str, Any], reason: str) -> None:
        message = (
            f"{row.get('source', '<candidates>')}: line {row.get('line', '?')}: {reason} (candidate skipped)"
        )
        logger.warning(message)
        self.skipped.append(
            {"reason": message, **{k: row.get(k) for k in ("seriesuid", "coordX", "coordY", "coordZ")}}
        )

    def _cache_path(self, scan: Mapping[str, Any], rows: list[dict[str, Any]]) -> Path | None:
        if self.cache_dir is None:
            return None
        source = scan["image"]
        try:
            if isinstance(source, (list, tuple)):  # a DICOM series given as its files
                files = [Path(str(f)) for f in source]
            elif Path(str(source)).is_dir():
                files = sorted(p for p in Path(str(source)).iterdir() if p.is_file())
            else:
                files = [Path(str(source))]
            # a changed, added or removed file changes the key, so a stale cache is never read
            stamp = [(str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns) for p in files]
        except OSError:
            return None
        key = json.dumps(
            {
                "version": _CACHE_VERSION,
                "image": stamp,
                "centres": [[round(float(r[c]), 6) for c in ("coordX", "coordY", "coordZ")] for r in rows],
                "scales": self.scales_mm,
                "size": self.patch_size,
                "window": self.hu_window,
            },
            sort_keys=True,
        )
        digest = hashlib.sha256(key.encode()).hexdigest()[:24]
        return self.cache_dir / f"{scan['seriesuid']}.{digest}.npz"

    def _scan_patches(
        self, scan: Mapping[str, Any], rows: list[dict[str, Any]]
    ) -> tuple[np.ndarray, np.ndarray, list[dict[str, Any]]]:
        from lungcad_transforms.data.coords import inside_volume, world_to_voxel

        cache = self._cache_path(scan, rows)
        if cache is not None and cache.is_file():
            try:
                with np.load(cache) as stored:
                    inside = stored["inside"]
                    patches, affines = stored["patches"], stored["affines"]
                    self.scan_geometry[str(scan["seriesuid"])] = {
                        "affine": stored["scan_affine"],
                        "shape": tuple(int(v) for v in stored["scan_shape"]),
                        "image": scan["image"],
                    }
                kept = [row for row, ok in zip(rows, inside, strict=True) if ok]
                for row, ok in zip(rows, inside, strict=True):
                    if not ok:
                        self._skip(row, f"centre lies outside scan {scan['image']}")
                return patches, affines, kept
            except (OSError, KeyError, ValueError) as err:
                logger.warning("patch cache %s unreadable (%s): reading the scan again", cache, err)
        from lungcad_transforms.data.image_reader import load_image

        image = load_image(scan)
        affine = convert_to_numpy(image.affine, dtype=np.float64)
        shape = tuple(int(s) for s in image.shape[1:])
        self.scan_geometry[str(scan["seriesuid"])] = {
            "affine": affine,
            "shape": shape,
            "image": scan["image"],
        }
        centres = np.array([[r["coordX"], r["coordY"], r["coordZ"]] for r in rows], dtype=np.float64)
        voxels = world_to_voxel(centres, affine)
        inside = inside_volume(voxels, shape)
        for row, ok in zip(rows, inside, strict=True):
            if not ok:
                self._skip(row, f"centre lies outside scan {scan['image']} (voxel shape {shape})")
        patches, affines = extract_multiscale_patches(
            image, affine, voxels[inside], self.scales_mm, self.patch_size, self.hu_window
        )
        patches = patches.astype(np.float16)
        if cache is not None:
            with atomic_file(cache) as tmp:
                with open(tmp, "wb") as fh:
                    np.savez(
                        fh,
                        patches=patches,
                        affines=affines,
                        inside=inside,
                        scan_affine=affine,
                        scan_shape=np.asarray(shape),
                    )
        return patches, affines, [row for row, ok in zip(rows, inside, strict=True) if ok]

    def _extra_positive_patches(
        self, spec: Any
    ) -> Iterable[tuple[np.ndarray, np.ndarray, list[dict[str, Any]]]]:
        entries = load_extra_positives(spec)
        if not entries:
            return
        scan_entries = [e for e in entries if "image" in e and "patches" not in e and PATCH_KEYS[0] not in e]
        for entry in entries:
            if entry in scan_entries:
                continue
            arrays = self._patch_arrays(entry)
            n = arrays.shape[0]
            # precomputed patches carry no scan position: an identity-like affine at the scale's voxel size
            affines = np.tile(np.eye(4), (n, len(self.scales_mm), 1, 1))
            for s, extent in enumerate(self.scales_mm):
                affines[:, s, :3, :3] = np.diag(np.asarray(extent) / np.asarray(self.patch_size))
            rows = [
                {
                    "seriesuid": str(entry.get("seriesuid", "synthetic")),
                    "coordX": math.nan,
                    "coordY": math.nan,
                    "coordZ": math.nan,
                    "class": 1,
                    "synthetic": True,
                    "line": 0,
                    "source": str(entry.get("patches", "<extra_positives>")),
                }
                for _ in range(n)
            ]
            yield arrays.astype(np.float16), affines, rows
        for entry in scan_entries:
            entry = _with_seriesuid(dict(entry))
            row = {k: float(entry[k]) for k in ("coordX", "coordY", "coordZ")}
            row.update(seriesuid=str(entry["seriesuid"]), **{"class": 1}, line=0, source=str(entry["image"]))
            patches, affines, kept = self._scan_patches(entry, [row])
            yield patches, affines, [{**r, "synthetic": True} for r in kept]

    def _patch_arrays(self, entry: Mapping[str, Any]) -> np.ndarray:
        source = str(entry.get("patches", "<extra_positives>"))
        if "patches" in entry:
            try:
                with np.load(str(entry["patches"])) as stored:
                    arrays = [np.asarray(stored[k], dtype=np.float32) for k in PATCH_KEYS]
            except (OSError, KeyError, ValueError) as err:
                raise InputError(source, f"extra positive patches unreadable: {err}") from err
        else:
            try:
                arrays = [convert_to_numpy(entry[k], dtype=np.float32) for k in PATCH_KEYS]
            except KeyError as err:
                raise InputError(source, f"extra positive entry lacks {err}") from err
        arrays = [a[None] if a.ndim == 3 else a for a in arrays]
        shapes = {a.shape for a in arrays}
        if len(shapes) != 1 or arrays[0].shape[1:] != self.patch_size:
            raise InputError(
                source,
                f"extra positive patches have shapes {sorted(shapes)}, expected (M, *{self.patch_size})",
            )
        if not all(np.isfinite(a).all() for a in arrays):
            raise InputError(source, "extra positive patches contain NaN or infinite values")
        return np.stack(arrays, axis=1)

    # -- access ------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item: dict[str, Any] = {}
        for s, key in enumerate(PATCH_KEYS[: len(self.scales_mm)]):
            item[key] = MetaTensor(
                torch.from_numpy(self.patches[index, s].astype(np.float32))[None],
                affine=torch.as_tensor(self.affines[index, s]),
            )
        item["label"] = torch.tensor([float(self.labels[index])], dtype=torch.float32)
        item["index"] = int(index)
        return self.transform(item) if self.transform is not None else item

    @property
    def seriesuids(self) -> list[str]:
        """Ids of the scans that were given (the FP-per-scan divisor of the FROC analysis)."""
        return [str(s["seriesuid"]) for s in self.scans]

    def class_counts(self) -> dict[int, int]:
        """Candidates per class (-1: unlabelled)."""
        values, counts = np.unique(self.labels, return_counts=True)
        return {int(v): int(c) for v, c in zip(values, counts, strict=True)}

    def sample_weights(self) -> torch.Tensor:
        """Per-item weights that make both classes equally likely under a weighted random sampler.

        LUNA16 has about one nodule per 500 candidates; drawing each class with probability 1/2
        (``torch.utils.data.WeightedRandomSampler(ds.sample_weights(), n)``) balances the batches.
        """
        counts = self.class_counts()
        weights = np.array([1.0 / counts[int(label)] for label in self.labels], dtype=np.float64)
        return torch.as_tensor(weights)
