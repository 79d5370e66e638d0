"""What an MR/PET evaluation or inference run leaves behind: per-slice and per-patient probabilities
(CSV), metrics with confusion matrices and ROC (when labels are known), each patient's registration, and
Grad-CAM overlays on the MR with the PET beside them."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lungcad_transforms.apps.mrpet.slices import UNKNOWN_LABEL, MRPETSliceDataset, patient_scores
from lungcad_transforms.utils.atomic import atomic_file

logger = logging.getLogger(__name__)

__all__ = [
    "SLICE_COLUMNS",
    "PATIENT_COLUMNS",
    "MRPETResultsWriter",
    "save_gradcam_overlay",
]

SLICE_COLUMNS = ("patient", "slice", "probability", "label")
PATIENT_COLUMNS = ("patient", "probability", "prediction", "label", "n_slices", "top_slice")


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items() if k != "parameter_map"}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.generic,)):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def save_gradcam_overlay(
    heatmap: np.ndarray, display: dict[str, np.ndarray], path: str | os.PathLike, title: str = ""
) -> Path:
    """One PNG: the Grad-CAM heatmap over the MR slice (or the PET's, without MR), the PET slice beside it.

    Args:
        heatmap: (H, W) in [0, 1].
        display: ``{"mr": (H, W), "pet": (H, W)}`` scaled to [0, 1] (either may be missing).
        path: the PNG (written atomically).
        title: figure title.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    base = "mr" if "mr" in display else "pet"
    panels = [(base, True)] + ([("pet", False)] if base == "mr" and "pet" in display else [])
    fig = Figure(figsize=(3.6 * len(panels), 3.8), dpi=120)
    FigureCanvasAgg(fig)
    for n, (key, overlay) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), n + 1)
        # (H, W) is (x: right, y: anterior) in RAS: transposed and flipped to the radiological view
        ax.imshow(
            np.asarray(display[key]).T[::-1, ::-1], cmap="gray" if key == "mr" else "hot", vmin=0, vmax=1
        )
        if overlay:
            ax.imshow(np.asarray(heatmap).T[::-1, ::-1], cmap="jet", alpha=0.4, vmin=0, vmax=1)
        ax.set_title(f"{key.upper()}{' + Grad-CAM' if overlay else ''}")
        ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    with atomic_file(path) as tmp:
        fig.savefig(tmp, format="png")
    return path


def _gradcam(network: torch.nn.Module, image: torch.Tensor, layer: str) -> np.ndarray:
    """Grad-CAM of the tumour class against the other for one input ``(C, *spatial)``, in [0, 1]."""
    from lungcad_transforms.visualize.slice_cam import class_gradcam

    device = next(network.parameters()).device
    return class_gradcam(network, image[None].to(device), layer)[0, 0].cpu().numpy()


def _write_tables(
    dataset: MRPETSliceDataset, probs: np.ndarray, out: Path, threshold: float
) -> tuple[list[dict[str, Any]], np.ndarray, np.ndarray]:
    """``slices.csv`` and ``patients.csv``; returns the patient rows, scores and labels."""
    from lungcad_transforms.data.csv_table import write_table

    items, labels = dataset.items, dataset.labels
    ids = [item["patient"] for item in items]
    # an unknown label is left out of its row: write_table leaves a missing optional column empty
    slice_rows = [{"patient": i["patient"], "slice": i["slice"], "probability": float(p)}
                  | ({"label": int(i["label"])} if int(i["label"]) != UNKNOWN_LABEL else {})
                  for i, p in zip(items, probs, strict=True)]  # fmt: skip
    write_table(slice_rows, out / "slices.csv", SLICE_COLUMNS, required=("patient", "slice", "probability"),
                numeric=["probability"], integer=["slice", "label"])  # fmt: skip
    order, scores, patient_labels = patient_scores(ids, probs, np.maximum(labels, 0))
    known = bool((labels != UNKNOWN_LABEL).all())
    patient_rows = []
    for pid, score, lab in zip(order, scores, patient_labels, strict=True):
        member = [k for k, i in enumerate(ids) if i == pid]
        top = member[int(np.argmax(probs[member]))]
        patient_rows.append({"patient": pid, "probability": float(score), "prediction": int(score >= threshold),
                             "n_slices": len(member), "top_slice": items[top]["slice"], "_top": top}
                            | ({"label": int(lab)} if known else {}))  # fmt: skip
    write_table(patient_rows, out / "patients.csv", PATIENT_COLUMNS, required=("patient", "probability", "prediction"),
                numeric=["probability"], integer=["prediction", "label", "n_slices", "top_slice"])  # fmt: skip
    return patient_rows, scores, patient_labels


def _slice_view(
    heat: np.ndarray, display: dict[str, Any], k: int, spatial_dims: int
) -> tuple[np.ndarray, dict]:
    """The heatmap and the display images of slice ``k`` (the middle one for volumes), on one grid."""
    shown = {key: np.asarray(v[0][..., k] if spatial_dims == 2 else v[0][..., v.shape[-1] // 2])
             for key, v in display.items()}  # fmt: skip
    if spatial_dims == 3:
        heat = heat[..., heat.shape[-1] // 2]
    grid = next(iter(shown.values())).shape
    if heat.shape != grid:  # a centre-cropped input: pad back to the slice
        full = np.zeros(grid, dtype=np.float32)
        dy, dx = [(a - b) // 2 for a, b in zip(grid, heat.shape, strict=True)]
        full[dy : dy + heat.shape[0], dx : dx + heat.shape[1]] = heat
        heat = full
    return heat, shown


@dataclass(eq=False)
class MRPETResultsWriter:
    """Ignite handler: collects the evaluator's tumour probabilities per sample and, when the run ends,
    writes them with :meth:`write` (on rank 0 of a distributed run, from all ranks' scores).

    Args:
        dataset: the evaluator's :class:`MRPETSliceDataset`.
        output_dir: folder of the outputs.
        network: for Grad-CAM (None: no overlays).
        gradcam_layer: module name Grad-CAM reads (``"layer4"``; ``"encoders.0.layer4"`` for the MR encoder
            of :class:`~lungcad_transforms.networks.nets.IntermediateFusionResNet`).
        gradcam_patients: overlays for this many most suspicious patients.
        threshold: decision threshold.
        mode: written into titles and ``metrics.json``.
        logits: the evaluator's ``pred`` are logits (softmax taken here); False: already probabilities.

    Attributes:
        scores: sample index -> tumour probability of the last run.
        metrics: what :meth:`write` returned at the end of the last run.
    """

    dataset: MRPETSliceDataset
    output_dir: str | os.PathLike
    network: torch.nn.Module | None = None
    gradcam_layer: str = "layer4"
    gradcam_patients: int = 8
    threshold: float = 0.5
    mode: str = ""
    logits: bool = True
    scores: dict[int, float] = field(default_factory=dict, init=False, repr=False)
    metrics: dict[str, Any] = field(default_factory=dict, init=False, repr=False)

    def write(self, probs: Sequence[float]) -> dict[str, Any]:
        """Write ``slices.csv``, ``patients.csv``, ``registration/<patient>.json`` (+ Elastix file),
        ``gradcam/<patient>.png`` (the patient's most suspicious slice) and, when every sample has a label,
        ``metrics.json`` with per-slice and per-patient reports, ``confusion_{slices,patients}.png`` and
        ``roc.png``.

        Args:
            probs: tumour probability per sample of :attr:`dataset`, in its order.

        Returns:
            The metrics (empty without labels).
        """
        from lungcad_transforms.transforms.registration.functional import save_registration

        out = Path(self.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        probs = np.asarray(probs, dtype=np.float64)
        patient_rows, scores, patient_labels = _write_tables(self.dataset, probs, out, self.threshold)
        for record in self.dataset.patients:
            if record.get("registration"):
                save_registration(_jsonable(record["registration"]) | {"parameter_map": record["registration"].get("parameter_map")},
                                  out / "registration", record["patient"])  # fmt: skip
        if self.network is not None and self.gradcam_patients > 0:
            self._write_gradcams(patient_rows, out / "gradcam")
        labels = self.dataset.labels
        if labels.size and bool((labels != UNKNOWN_LABEL).all()):
            return self._write_metrics(labels, probs, patient_labels, scores, out)
        return {}

    def _write_gradcams(self, patient_rows: list[dict[str, Any]], folder: Path) -> None:
        dataset = self.dataset
        by_patient = {r["patient"]: r for r in dataset.patients}
        for row in sorted(patient_rows, key=lambda r: -r["probability"])[: int(self.gradcam_patients)]:
            item = dataset.items[row["_top"]]
            image = item["image"] if dataset.transform is None else dataset[row["_top"]]["image"]
            heat = _gradcam(self.network, image, self.gradcam_layer)
            display = by_patient[row["patient"]].get("display") or {}
            heat, shown = _slice_view(heat, display, max(item["slice"], 0), dataset.spatial_dims)
            save_gradcam_overlay(heat, shown, folder / f"{row['patient']}.png",
                                 f"{row['patient']} slice {item['slice']}: p(tumour) = {row['probability']:.2f} ({self.mode})")  # fmt: skip

    def _write_metrics(self, labels, probs, patient_labels, scores, out: Path) -> dict[str, Any]:
        from lungcad_transforms.metrics.classification import binary_classification_report
        from lungcad_transforms.visualize.classification_plots import save_confusion_matrix_png, save_roc_png

        mode = self.mode
        metrics = {"mode": mode, "threshold": self.threshold, "patient_rule": "max",
                   "slices": binary_classification_report(labels, probs, self.threshold),
                   "patients": binary_classification_report(patient_labels, scores, self.threshold)}  # fmt: skip
        for level in ("slices", "patients"):
            save_confusion_matrix_png(
                metrics[level]["confusion"], out / f"confusion_{level}.png", title=f"{mode} {level}"
            )
        curves = {f"{level} ({mode})": (y, p) for level, y, p in (("slices", labels, probs), ("patients", patient_labels, scores))
                  if len(set(np.asarray(y).tolist())) == 2}  # fmt: skip
        if curves:
            save_roc_png(curves, out / "roc.png", title=f"MR/PET classifier, mode {mode}")
        with atomic_file(out / "metrics.json") as tmp:
            tmp.write_text(json.dumps(_jsonable(metrics), indent=2) + "\n", encoding="utf-8")
        logger.info(
            "%s: slice AUC %.3f, patient AUC %.3f",
            mode,
            metrics["slices"]["roc_auc"],
            metrics["patients"]["roc_auc"],
        )
        return metrics

    def attach(self, engine: Any) -> None:
        """Collect at each iteration, write when ``engine`` completes."""
        from ignite.engine import Events

        engine.add_event_handler(Events.EPOCH_STARTED, lambda _: self.scores.clear())
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._collect)
        engine.add_event_handler(Events.COMPLETED, self._finish)

    def _collect(self, engine: Any) -> None:
        batch, output = engine.state.batch, engine.state.output
        preds = output["pred"] if isinstance(output, dict) else [o["pred"] for o in output]
        preds = torch.stack([torch.as_tensor(p) for p in preds]) if isinstance(preds, list) else preds
        values = preds.float().reshape(len(preds), -1)
        prob = (torch.softmax(values, dim=1) if self.logits else values)[:, 1]
        # MONAI engines decollate the batch into a list of items unless told not to
        indices = (
            [int(b["index"]) for b in batch]
            if isinstance(batch, list)
            else torch.as_tensor(batch["index"]).tolist()
        )
        for index, p in zip(indices, prob.tolist(), strict=True):
            self.scores[int(index)] = float(p)

    def _finish(self, engine: Any) -> None:
        import torch.distributed as dist

        scores = self.scores
        if dist.is_available() and dist.is_initialized():
            gathered: list[Any] = [None] * dist.get_world_size()
            dist.all_gather_object(gathered, scores)
            scores = {k: v for part in gathered for k, v in part.items()}
            if dist.get_rank() != 0:
                return
        missing = len(self.dataset) - len(scores)
        if missing:
            logger.warning("%d samples were not scored", missing)
        self.metrics = self.write([scores.get(i, float("nan")) for i in range(len(self.dataset))])
