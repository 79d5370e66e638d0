"""The two CT bundles of the CAD chain, run through their own ``inference.json`` for one study.

Nothing of the bundles' inference is re-implemented here: each stage parses the bundle's own
``configs/train.json`` + ``configs/inference.json`` with MONAI's ``ConfigParser``, points the datalist,
candidate table and output folder at the study, and runs the config's ``initialize`` expressions and
its ``evaluator``: the same transforms, network, inferer, checkpoint loading and handlers as
``python -m monai.bundle run --config_file "['configs/train.json','configs/inference.json']"``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lungcad_transforms.data.datasets import file_sha256
from lungcad_transforms.errors import InputError

__all__ = [
    "SEGMENTATION_BUNDLE",
    "FP_REDUCTION_BUNDLE",
    "CADBundles",
    "SegmentationResult",
    "ScoringResult",
    "bundle_setting",
    "file_sha256",
    "resolve_bundles",
    "run_segmentation",
    "nodule_probability",
    "run_fp_reduction",
]

SEGMENTATION_BUNDLE = "lung_nodule_ct_segmentation"
FP_REDUCTION_BUNDLE = "lung_nodule_ct_fp_reduction"


@dataclass(frozen=True)
class CADBundles:
    """The bundle folders of the chain (each with ``configs/`` and ``models/model.pt``)."""

    segmentation: Path
    fp_reduction: Path

    @property
    def weights(self) -> dict[str, Path]:
        return {
            SEGMENTATION_BUNDLE: self.segmentation / "models" / "model.pt",
            FP_REDUCTION_BUNDLE: self.fp_reduction / "models" / "model.pt",
        }

    def missing_weights(self) -> list[Path]:
        return [path for path in self.weights.values() if not path.is_file()]


def resolve_bundles(bundle_dir: str | os.PathLike | None = None) -> CADBundles:
    """Find the segmentation and FP-reduction bundles.

    Args:
        bundle_dir: a folder holding both bundle folders (``lung_nodule_ct_segmentation/``,
            ``lung_nodule_ct_fp_reduction/``: the repository's ``bundles/``, or where trained or exported
            copies were put); ``None``: the repository's ``bundles/``.

    Raises:
        InputError: a bundle folder or its ``configs/inference.json`` is missing.
    """
    from lungcad_transforms.data.datasets import REPO_ROOT, find_bundle

    root = Path(bundle_dir) if bundle_dir is not None else REPO_ROOT / "bundles"
    found = []
    for name in (SEGMENTATION_BUNDLE, FP_REDUCTION_BUNDLE):
        folder = find_bundle(name, roots=[root], needs=("configs/train.json", "configs/inference.json"))
        if folder is None:
            raise InputError(
                root / name,
                f"is not a {name} bundle (needs configs/metadata.json, train.json, inference.json)",
            )
        found.append(folder)
    return CADBundles(*found)


def _parser(bundle: Path, overrides: Mapping[str, Any]) -> Any:
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config([str(bundle / "configs" / "train.json"), str(bundle / "configs" / "inference.json")])
    parser.update({"bundle_root": str(bundle), **overrides})
    return parser


def bundle_setting(bundle: Path, key: str) -> Any:
    """One setting of a bundle's inference config (``train.json`` + ``inference.json``), e.g. ``lung_dilation_mm``."""
    return _parser(bundle, {}).get_parsed_content(key)


def _run(parser: Any) -> Any:
    """Evaluate the config's ``initialize`` expressions (checkpoint check and load), then run its evaluator."""
    parser.get_parsed_content("initialize")
    evaluator = parser.get_parsed_content("evaluator")
    evaluator.run()
    return evaluator


@dataclass
class SegmentationResult:
    """What the segmentation bundle's inference gave for one study.

    Attributes:
        candidates: candidate rows (LUNA16 world centre, probability, ``diameter_mm``, ``volume_mm3``).
        mask: the nodule mask (probability >= the bundle's ``mask_threshold``) on the loaded RAS grid,
            ``(X, Y, Z)`` bool; ``None`` when the bundle skipped the scan.
        probability_path: the bundle's probability map (NIfTI on the input's own grid).
        skipped: why the bundle's dataset skipped the scan (empty when it did not).
        settings: the bundle settings used (thresholds).
    """

    candidates: list[dict[str, Any]]
    mask: np.ndarray | None
    probability_path: Path | None
    skipped: str = ""
    settings: dict[str, Any] = field(default_factory=dict)


def run_segmentation(
    bundle: Path, entry: Mapping[str, Any], work_dir: str | os.PathLike, device: str | None = None
) -> SegmentationResult:
    """Run the segmentation bundle's ``inference.json`` on one study (a :func:`find_images` entry).

    The bundle writes its ``candidates.csv`` and probability / mask NIfTI under ``work_dir``.
    """
    from monai.utils import convert_to_numpy

    work = Path(work_dir)
    overrides: dict[str, Any] = {
        "datalist": [dict(entry)],
        "use_embedded_data": False,
        "output_dir": str(work),
    }
    if device is not None:
        overrides["device"] = f"$torch.device({device!r})"
    parser = _parser(bundle, overrides)
    evaluator = _run(parser)
    dataset = parser.get_parsed_content("dataset")
    settings = {
        key: parser.get_parsed_content(key)
        for key in ("mask_threshold", "candidate_threshold", "min_candidate_volume_mm3", "lung_dilation_mm")
    }
    if dataset.skipped:
        return SegmentationResult([], None, None, dataset.skipped[0][1], settings)
    outputs = evaluator.state.output
    out = outputs[0] if isinstance(outputs, list) else outputs
    mask = convert_to_numpy(out["pred"])[0] > 0.5
    prob = out.get("pred_path")
    return SegmentationResult(
        list(out.get("candidates") or []), mask, Path(prob) if prob else None, "", settings
    )


@dataclass
class ScoringResult:
    """What the FP-reduction bundle's inference gave for one study's candidates.

    Attributes:
        rows: every scored candidate, most probable first: its segmentation row with ``probability``
            the chain's nodule probability (:func:`nodule_probability` of the two bundles'), the FP
            bundle's kept as ``fp_probability`` and the segmentation's as ``seg_probability``.
        network: the bundle's network with its trained weights loaded (for Grad-CAM).
        dataset: the bundle's ``MultiScalePatchDataset`` (patches and their affines).
        indices: dataset index of each row of ``rows``.
        threshold: the bundle's ``nodule_threshold``.
        target_layer: the bundle's ``gradcam_target_layer``.
    """

    rows: list[dict[str, Any]]
    network: Any
    dataset: Any
    indices: list[int]
    threshold: float
    target_layer: str | None


def nodule_probability(fp_probability: float, seg_probability: float | None) -> float:
    """The chain's nodule probability of a candidate: the geometric mean of the two bundles' probabilities.

    The FP-reduction network sees multi-scale patches, the segmentation network the whole context of its
    3-D window; their errors are partly independent, so scoring by both ranks candidates better than either
    alone. On the segmentation bundle's phantom validation split with the demo weights, where the rule was
    chosen, the LUNA16 CPM is 0.753 for the product of the two (the geometric mean ranks as the product), for
    their arithmetic mean too, 0.747 for the mean log-odds, 0.734 for the FP probability alone and 0.649 for the
    segmentation's. The geometric mean keeps the FP bundle's veto: the segmentation's candidate probability
    is near 1 for most candidates, so under the arithmetic mean the 0.5 threshold would keep nearly every
    candidate the FP network rejects; here one at or above 0.5 needs a product of at least 0.25 (validation:
    sensitivity 0.73 at 1.0 FP per scan; arithmetic mean 0.77 at 1.5, FP alone 0.77 at 1.5). A candidate
    without a segmentation probability keeps the FP bundle's.

    Examples:
        >>> round(nodule_probability(0.9, 0.4), 6), nodule_probability(0.2, None)
        (0.6, 0.2)
    """
    if seg_probability is None:
        return float(fp_probability)
    return math.sqrt(max(float(fp_probability), 0.0) * max(float(seg_probability), 0.0))


def run_fp_reduction(
    bundle: Path,
    entry: Mapping[str, Any],
    candidates: list[dict[str, Any]],
    work_dir: str | os.PathLike,
    device: str | None = None,
) -> ScoringResult:
    """Score one study's candidates with the FP-reduction bundle's ``inference.json``.

    The bundle's own Grad-CAM handler is told to explain no candidate (``gradcam_max_candidates`` 0):
    the chain computes the Grad-CAM of the kept nodules itself with the same library functions, on
    the loaded scan, without the handler's per-candidate files.
    """
    from lungcad_transforms.data.tables import write_results_csv
    from lungcad_transforms.handlers.candidate_scores import CandidateResultsWriter

    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    table = write_results_csv(candidates, work / "segmentation_candidates.csv")
    overrides: dict[str, Any] = {
        "dataset#scans": [dict(entry)],
        "candidates_file": str(table),
        "use_embedded_data": False,
        "output_dir": str(work),
        "gradcam_max_candidates": 0,
    }
    if device is not None:
        overrides["device"] = f"$torch.device({device!r})"
    parser = _parser(bundle, overrides)
    evaluator = _run(parser)
    dataset = parser.get_parsed_content("dataset")
    writer = next(h for h in parser.get_parsed_content("handlers") if isinstance(h, CandidateResultsWriter))
    scored = []
    for index, probability in writer.scores.items():
        record = dataset.records[index]
        source = candidates[int(record["line"]) - 2] if "line" in record else record
        seg = source.get("probability")
        row = {**source, "probability": nodule_probability(float(probability), seg),
               "fp_probability": float(probability), "seg_probability": seg}  # fmt: skip
        scored.append((row, index))
    scored.sort(key=lambda item: -item[0]["probability"])
    rows, indices = [r for r, _ in scored], [i for _, i in scored]
    return ScoringResult(
        rows,
        evaluator.network,
        dataset,
        indices,
        float(parser.get_parsed_content("nodule_threshold")),
        parser.get_parsed_content("gradcam_target_layer"),
    )
