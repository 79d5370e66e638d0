"""Pieces the nodule-segmentation bundle's configs need that MONAI has no component for.

The bundle (``bundles/lung_nodule_ct_segmentation``) is MONAI engines, handlers, transforms and inferers
wired in JSON; what is here fills the gaps:

- :class:`LoadScan` / :class:`LoadScand`: load a scan through :func:`lungcad_transforms.io.load_image`
  (DICOM series at any depth, NIfTI, MetaImage, NRRD; RAS; truncated / mixed series refused), so that a
  folder entry of :func:`~lungcad_transforms.io.find_images` and a training datalist load the same way.
- :class:`RequireForegroundd`: refuses a scan whose lung mask came out empty (``InputError``), where
  ``CropForegroundd`` would otherwise crop it to nothing.
- :class:`SkipBadScansDataset`: an iterable dataset that logs and skips a scan whose loading or
  preprocessing fails (not CT, no lungs, broken file), so one bad scan does not stop a folder run.
- :class:`SaveNiftid`: writes a map as NIfTI with MONAI's ``NibabelWriter`` (affine from the
  ``MetaTensor``, so the file lines up with the scan) through :func:`~lungcad_transforms.outputs.atomic_file`,
  named by series UID (MONAI's ``SaveImaged`` would cut a UID at its last dot, taking it for an extension).
- :class:`NoduleCandidatesHandler`: an ignite handler that gathers the candidates of every scan into one
  LUNA16 results CSV (rewritten atomically after each scan) and, given an annotations CSV, writes the
  detection figures (candidate sensitivity, false positives per scan, FROC / CPM) and the Dice to JSON.
- :func:`require_checkpoint`: stops an inference run without trained weights with a message saying how
  to get them.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.data import IterableDataset, MetaTensor
from monai.data.image_writer import NibabelWriter
from monai.transforms import MapTransform, Transform, apply_transform
from monai.utils import TransformBackends

from lungcad_transforms.errors import InputError
from lungcad_transforms.outputs import atomic_file

__all__ = [
    "LoadScan",
    "LoadScand",
    "LoadScanD",
    "LoadScanDict",
    "RequireForegroundd",
    "RequireForegroundD",
    "RequireForegroundDict",
    "SkipBadScansDataset",
    "SaveNiftid",
    "SaveNiftiD",
    "SaveNiftiDict",
    "NoduleCandidatesHandler",
    "require_checkpoint",
    "TRAIN_COMMAND",
]

logger = logging.getLogger(__name__)

TRAIN_COMMAND = (
    "python -m monai.bundle run training --config_file bundles/lung_nodule_ct_segmentation/configs/train.json"
)


def _root_cause(err: BaseException) -> BaseException:
    # MONAI wraps a failing transform's error in RuntimeError("applying transform ..."): report the original
    while err.__cause__ is not None and isinstance(err, RuntimeError):
        err = err.__cause__
    return err


def _where(item: Any) -> str:
    if isinstance(item, Mapping):
        image = item.get("image", item.get("seriesuid", "<entry>"))
        return str(image[0] if isinstance(image, (list, tuple)) and image else image)
    return str(item)


class LoadScan(Transform):
    """Load one scan with :func:`lungcad_transforms.io.load_image`: ``MetaTensor`` (1, X, Y, Z), RAS, float32.

    Accepts what ``load_image`` accepts: a DICOM series folder, a list of one series' files, a NIfTI /
    MetaImage / NRRD file, or a :func:`~lungcad_transforms.io.find_images` entry. The metadata carries
    ``seriesuid`` and ``modality``.

    Examples:
        >>> ct = LoadScan()("LIDC-IDRI-0003/1.3.6.1.4.1.14519.5.2.1.6279.6001.1013.../1.3.6...003264")  # doctest: +SKIP
        >>> ct.shape, ct.meta["modality"]  # doctest: +SKIP
        (torch.Size([1, 512, 512, 11]), 'CT')
    """

    backend = [TransformBackends.TORCH]

    def __call__(self, ref: Any) -> MetaTensor:
        from lungcad_transforms.io import load_image

        return load_image(ref)


class LoadScand(MapTransform):
    """Dictionary-based :class:`LoadScan`.

    The first key is the scan: it is loaded together with the entry's ``seriesuid`` (which picks the series
    in a folder holding several). Further keys (labels, masks) are loaded as plain files.

    Args:
        keys: scan key first, then label keys.
        seriesuid_key: entry key holding the series UID; when the entry has none, the loaded one is written
            there, so later steps (file names, candidate rows) can use it.

    Examples:
        >>> data = LoadScand(["image", "label"])({"image": "case_000.nii.gz", "label": "case_000_label.nii.gz"})  # doctest: +SKIP
        >>> data["image"].shape == data["label"].shape, data["seriesuid"]  # doctest: +SKIP
        (True, 'case_000')
    """

    backend = LoadScan.backend

    def __init__(
        self, keys: KeysCollection, seriesuid_key: str = "seriesuid", allow_missing_keys: bool = False
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.loader = LoadScan()
        self.seriesuid_key = seriesuid_key

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for n, key in enumerate(self.key_iterator(d)):
            if n == 0:
                entry = {"image": d[key], "seriesuid": d.get(self.seriesuid_key) or None}
                if d.get("modality") is not None:
                    entry["modality"] = d["modality"]
                d[key] = self.loader(entry)
                d[self.seriesuid_key] = str(d[key].meta.get("seriesuid", ""))
            else:
                d[key] = self.loader(d[key])
        return d


LoadScanD = LoadScanDict = LoadScand


class RequireForegroundd(MapTransform):
    """Raise ``InputError`` when a mask key holds no foreground; pass the data through otherwise.

    Put after ``LungMaskd``: a CT without lungs (an abdomen slab, a head scan, a phantom without air) gives an
    empty lung mask, and ``CropForegroundd`` would crop the scan to nothing further down.

    Args:
        keys: the mask keys to check.
        what: what the mask shows, for the message ("lungs").
        source_key: key whose ``meta["filename_or_obj"]`` names the scan in the message.

    Examples:
        >>> empty = MetaTensor(torch.zeros(1, 8, 8, 8), meta={"filename_or_obj": "abdomen.nii.gz"})
        >>> RequireForegroundd("lung_image")({"image": empty, "lung_image": empty})
        Traceback (most recent call last):
        ...
        lungcad_transforms.errors.InputError: abdomen.nii.gz: no lungs found (lung_image is empty): not a chest CT?
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __init__(
        self,
        keys: KeysCollection,
        what: str = "lungs",
        source_key: str = "image",
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.what = what
        self.source_key = source_key

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            if not bool((torch.as_tensor(d[key]) > 0).any()):
                source = d.get(self.source_key, d[key])
                meta = source.meta if isinstance(source, MetaTensor) else {}
                where = str(meta.get("filename_or_obj") or d.get("seriesuid") or key)
                raise InputError(where, f"no {self.what} found ({key} is empty): not a chest CT?")
        return d


RequireForegroundD = RequireForegroundDict = RequireForegroundd


class SkipBadScansDataset(IterableDataset):
    """Iterate over datalist entries through ``transform``, logging and skipping entries that fail.

    A folder handed to inference may hold a scan that is not CT, a series with a truncated file, a CT
    without lungs: each raises (``InputError`` mostly) while it is loaded or preprocessed. This dataset
    reports the scan and the reason in the log, keeps them in :attr:`skipped`, and goes on with the next
    one. Use it with ``num_workers=0`` (the default of inference) so :attr:`skipped` is complete.

    Args:
        data: datalist entries (dicts with ``"image"``).
        transform: the preprocessing.
        errors: exception types that mark a bad scan (anything else, e.g. ``KeyboardInterrupt``, stops).

    Examples:
        >>> ds = SkipBadScansDataset([{"image": "good.nii.gz"}, {"image": "mr.nii.gz"}], preprocessing)  # doctest: +SKIP
        >>> [d["seriesuid"] for d in ds], ds.skipped  # doctest: +SKIP
        (['good'], [('mr.nii.gz', 'mr.nii.gz: modality is MR, not CT')])
    """

    def __init__(
        self,
        data: Iterable[Any],
        transform: Callable | None = None,
        errors: Sequence[type[BaseException]] = (Exception,),
    ) -> None:
        super().__init__(data=list(data), transform=transform)
        self.errors = tuple(errors)
        self.skipped: list[tuple[str, str]] = []

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        n_workers, worker = (info.num_workers, info.id) if info is not None else (1, 0)
        self.skipped = []
        for i, item in enumerate(self.data):
            if i % n_workers != worker:
                continue
            try:
                out = apply_transform(self.transform, item) if self.transform is not None else item
            except self.errors as err:
                cause = _root_cause(err)
                self.skipped.append((_where(item), str(cause)))
                logger.error("skipping scan %s: %s", _where(item), cause)
                continue
            yield out


class SaveNiftid(MapTransform):
    """Write each key's map as ``<output_dir>/<seriesuid>/<seriesuid>_<postfix>.nii.gz``, atomically.

    The array and its ``MetaTensor`` affine go through MONAI's ``NibabelWriter`` (no resampling), so the file
    overlays the scan it was computed on in any viewer. Writing goes to a temporary sibling first, so a
    crash never leaves a half-written file under the final name.

    Args:
        keys: maps to write, each ``(1, X, Y, Z)``.
        output_dir: folder for the outputs (one sub-folder per scan).
        postfixes: file name postfix per key (e.g. ``"prob"``, ``"mask"``).
        dtypes: numpy dtype per key (``float32`` probabilities, ``uint8`` masks).
        seriesuid_key: data key with the scan's id (used for the file names).
        path_key_postfix: the written path is stored under ``f"{key}_{path_key_postfix}"``.

    Examples:
        >>> prob = MetaTensor(torch.rand(1, 64, 64, 32), affine=torch.diag(torch.tensor([0.7, 0.7, 1.25, 1.0])))
        >>> d = SaveNiftid("prob", "/tmp/out", "prob", "float32")({"prob": prob, "seriesuid": "1.2.840.1"})  # doctest: +SKIP
        >>> d["prob_path"]  # doctest: +SKIP
        '/tmp/out/1.2.840.1/1.2.840.1_prob.nii.gz'
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __init__(
        self,
        keys: KeysCollection,
        output_dir: str | os.PathLike,
        postfixes: str | Sequence[str],
        dtypes: Any | Sequence[Any] = "float32",
        seriesuid_key: str = "seriesuid",
        path_key_postfix: str = "path",
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        n = len(self.keys)
        self.output_dir = Path(output_dir)
        self.postfixes = [postfixes] * n if isinstance(postfixes, str) else list(postfixes)
        self.dtypes = [dtypes] * n if isinstance(dtypes, (str, type, np.dtype)) else list(dtypes)
        if len(self.postfixes) != n or len(self.dtypes) != n:
            raise ValueError(f"need one postfix and one dtype per key ({n} keys)")
        self.seriesuid_key = seriesuid_key
        self.path_key_postfix = path_key_postfix

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key, postfix, dtype in self.key_iterator(d, self.postfixes, self.dtypes):
            img = d[key]
            uid = str(
                d.get(self.seriesuid_key)
                or (img.meta.get("seriesuid") if isinstance(img, MetaTensor) else "")
            )
            if not uid:
                raise ValueError(f"no {self.seriesuid_key!r} to name the output of {key!r}")
            safe = uid.replace(os.sep, "_")
            path = self.output_dir / safe / f"{safe}_{postfix}.nii.gz"
            writer = NibabelWriter(output_dtype=np.dtype(dtype))
            writer.set_data_array(img, channel_dim=0)
            affine = img.affine if isinstance(img, MetaTensor) else None
            writer.set_metadata({"affine": affine, "original_affine": affine}, resample=False)
            with atomic_file(path) as tmp:
                writer.write(tmp)
            d[f"{key}_{self.path_key_postfix}"] = str(path)
        return d


SaveNiftiD = SaveNiftiDict = SaveNiftid


def require_checkpoint(path: str | os.PathLike) -> str:
    """Return ``path`` when trained weights are there; otherwise stop with how to get them.

    Raises:
        InputError: no file at ``path``; the message gives the training command and where a downloaded
            ``model.pt`` goes.

    Examples:
        >>> require_checkpoint("bundles/lung_nodule_ct_segmentation/models/model.pt")  # doctest: +SKIP
        'bundles/lung_nodule_ct_segmentation/models/model.pt'
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        message = (
            "no trained weights. Train the model first (on the built-in synthetic data, or on yours with "
            f"--dataset_dir): `{TRAIN_COMMAND}`, or copy a trained model.pt to this path "
            "(or point --ckpt_path at one)"
        )
        logger.error("%s: %s", path, message)
        raise InputError(path, message)
    return path


class NoduleCandidatesHandler:
    """Gather the nodule candidates of every scan an engine processes; write CSV (and metrics) to a folder.

    Attached to a MONAI ``SupervisedEvaluator`` whose postprocessing puts candidate rows (from
    :class:`lungcad_transforms.candidates.ExtractCandidatesd`) under ``candidates_key``:

    - after every scan, ``<output_dir>/candidates.csv`` is rewritten (atomically) with the rows of all scans
      so far, in LUNA16 results form (``seriesuid,coordX,coordY,coordZ,probability,diameter_mm,volume_mm3``);
    - at the end of the run, with ``annotations`` given, the LUNA16 FROC analysis
      (:func:`lungcad_transforms.froc.froc_score`) of those candidates is written to ``froc.json`` /
      ``froc_curve.csv`` / ``froc.png``, and ``<output_dir>/<summary_filename>`` gets the headline figures:
      candidate sensitivity (nodules hit by any candidate), false positives per scan, the FROC
      sensitivities and CPM, and the engine's metrics (Dice) with per-scan values.

    Args:
        output_dir: where the files go.
        annotations: LUNA16 ``annotations.csv`` of the scans (world mm, LPS); None: candidates only.
        candidates_key: output key holding each scan's candidate rows.
        seriesuid_key: batch key holding each scan's id (a scan without candidates still counts as a scan).
        filename: candidate CSV name.
        summary_filename: metrics JSON name.
        skipped_from: a :class:`SkipBadScansDataset` whose skipped scans are listed in the summary.

    Examples:
        >>> handler = NoduleCandidatesHandler("eval", annotations="data/phantoms/annotations.csv")  # doctest: +SKIP
        >>> handler.attach(evaluator); evaluator.run()  # doctest: +SKIP
        >>> handler.summary["candidate_sensitivity"], handler.summary["fp_per_scan"]  # doctest: +SKIP
        (1.0, 2.5)
    """

    def __init__(
        self,
        output_dir: str | os.PathLike,
        annotations: str | os.PathLike | None = None,
        candidates_key: str = "candidates",
        seriesuid_key: str = "seriesuid",
        filename: str = "candidates.csv",
        summary_filename: str = "metrics.json",
        skipped_from: SkipBadScansDataset | None = None,
    ) -> None:
        self.output_dir = Path(output_dir)
        self.annotations = os.fspath(annotations) if annotations else None
        self.candidates_key = candidates_key
        self.seriesuid_key = seriesuid_key
        self.csv_path = self.output_dir / filename
        self.summary_path = self.output_dir / summary_filename
        self.skipped_from = skipped_from
        self.rows: list[dict[str, Any]] = []
        self.seriesuids: list[str] = []
        self.summary: dict[str, Any] = {}

    def attach(self, engine: Any) -> None:
        from ignite.engine import Events

        engine.add_event_handler(Events.STARTED, self._reset)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._collect)
        engine.add_event_handler(Events.COMPLETED, self._finish)

    def _reset(self, engine: Any) -> None:
        self.rows, self.seriesuids, self.summary = [], [], {}

    def _collect(self, engine: Any) -> None:
        outputs = engine.state.output if isinstance(engine.state.output, list) else [engine.state.output]
        batches = (
            engine.state.batch
            if isinstance(engine.state.batch, list)
            else [engine.state.batch] * len(outputs)
        )
        for out, batch in zip(outputs, batches, strict=True):
            rows = list(out.get(self.candidates_key) or [])
            uid = str(batch.get(self.seriesuid_key) or "") if isinstance(batch, Mapping) else ""
            if not uid:
                image = out.get("image", batch.get("image") if isinstance(batch, Mapping) else None)
                uid = str(image.meta.get("seriesuid", "")) if isinstance(image, MetaTensor) else ""
            if not uid and rows:
                uid = str(rows[0]["seriesuid"])
            self.seriesuids.append(uid)
            self.rows.extend(rows)
            logger.info("scan %s: %d nodule candidate(s)", uid, len(rows))
        self._write_csv()

    def _write_csv(self) -> None:
        from lungcad_transforms.froc import write_results_csv

        if self.rows:
            write_results_csv(self.rows, self.csv_path)
        else:  # header only: a run without candidates still leaves a valid LUNA16 results file
            from lungcad_transforms.candidates import CANDIDATE_COLUMNS

            with atomic_file(self.csv_path) as tmp:
                tmp.write_text(",".join(CANDIDATE_COLUMNS) + "\n", encoding="utf-8")

    def _finish(self, engine: Any) -> None:
        self._write_csv()
        summary: dict[str, Any] = {
            "n_scans": len(self.seriesuids),
            "n_candidates": len(self.rows),
            "candidates_csv": str(self.csv_path),
        }
        if self.skipped_from is not None:
            summary["skipped_scans"] = [
                {"scan": where, "reason": why} for where, why in self.skipped_from.skipped
            ]
        for name, value in getattr(engine.state, "metrics", {}).items():
            summary[name] = _jsonable(value)
        details = getattr(engine.state, "metric_details", {}) or {}
        for name, value in details.items():
            per_scan = (
                np.asarray(_jsonable(value), dtype=np.float64).reshape(len(self.seriesuids), -1).mean(axis=1)
                if len(self.seriesuids)
                else []
            )
            summary[f"{name}_per_scan"] = {
                uid: float(v) for uid, v in zip(self.seriesuids, per_scan, strict=True)
            }
        if self.annotations and self.seriesuids:
            summary.update(self._detection_figures())
        self.summary = summary
        if self.annotations or self.skipped_from is not None:
            with atomic_file(self.summary_path) as tmp:
                tmp.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
            logger.info("nodule detection summary (%s): %s", self.summary_path, _headline(summary))
        logger.info(
            "wrote %d candidate(s) of %d scan(s) to %s", len(self.rows), len(self.seriesuids), self.csv_path
        )

    def _detection_figures(self) -> dict[str, Any]:
        from lungcad_transforms.froc import froc_score, save_froc_report

        try:
            result = froc_score(self.annotations, self.rows, sorted(set(self.seriesuids)))
        except InputError as err:
            logger.warning("no detection figures: %s", err)
            return {"detection_error": str(err)}
        save_froc_report(result, self.output_dir, title="Nodule candidates (segmentation bundle)")
        return {
            "annotations": self.annotations,
            "n_nodules": result.total_nodules,
            "nodules_detected": result.detected_nodules,
            "candidate_sensitivity": result.detected_nodules / result.total_nodules,
            "false_positives": result.n_false_positives,
            "fp_per_scan": result.n_false_positives / result.n_scans,
            "froc_sensitivities": {
                f"{r:g}": float(s) for r, s in zip(result.fp_rates, result.sensitivities, strict=True)
            },
            "cpm": result.cpm,
        }


def _jsonable(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        return value.tolist() if value.size != 1 else float(value.reshape(-1)[0])
    if isinstance(value, (np.floating, float)):
        return None if not math.isfinite(float(value)) else float(value)
    if isinstance(value, (np.integer, int)):
        return int(value)
    return value


def _headline(summary: Mapping[str, Any]) -> str:
    keys = ("n_scans", "val_mean_dice", "candidate_sensitivity", "fp_per_scan", "cpm")
    return ", ".join(
        f"{k} {summary[k]:.4g}" if isinstance(summary.get(k), float) else f"{k} {summary.get(k)}"
        for k in keys
        if k in summary
    )
