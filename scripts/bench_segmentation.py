#!/usr/bin/env python
"""Time nodule-segmentation inference on a 512 x 512 x 300 chest CT, against a plain sliding window.

    python scripts/bench_segmentation.py [--threads 2] [--out outputs/bench_segmentation.json]

Both runs use the same MONAI ``UNet`` (the bundle's, with its trained weights when
``bundles/lung_nodule_ct_segmentation/models/model.pt`` exists, random ones otherwise) on the same
synthetic CT (``lungcad_transforms.apps.phantoms``, 0.7 x 0.7 x 1.0 mm, written as NIfTI and read back):

- **baseline**: load, window, ``sliding_window_inference`` over the whole volume at its own resolution
  (96^3 windows, 25 % overlap, 4 windows per batch), sigmoid, threshold.
- **bundle**: the components of ``configs/inference.json`` stage by stage: load + checks, resampling to
  1 mm, lung mask (dilated), crop to the lung box, window; sliding window over the lung box; sigmoid,
  inversion to the scan's grid, candidate extraction, writing the probability map and mask as NIfTI.

The lung is never skipped: every lung voxel is inside the box the bundle infers on. Prints one line per
stage and a JSON summary (also written to ``--out``), with the speed-up over the baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIGS = REPO_ROOT / "bundles" / "lung_nodule_ct_segmentation" / "configs"
# inference.json is an overlay on train.json, which defines the geometry and the network once
CONFIG_FILES = [str(CONFIGS / "train.json"), str(CONFIGS / "inference.json")]


def _timed(label: str, timings: dict[str, float], fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    timings[label] = round(time.perf_counter() - start, 2)
    print(f"  {label:<28s} {timings[label]:7.2f} s", flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--shape", type=int, nargs=3, default=(512, 512, 300), metavar=("X", "Y", "Z"))
    parser.add_argument("--spacing", type=float, nargs=3, default=(0.7, 0.7, 1.0))
    parser.add_argument("--skip-baseline", action="store_true", help="time the bundle only")
    parser.add_argument("--out", default=None, help="write the JSON summary here too")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    from monai.bundle import ConfigParser
    from monai.inferers import sliding_window_inference
    from monai.transforms import ScaleIntensityRange

    from lungcad_transforms.apps.phantoms.ct import make_ct_phantom
    from lungcad_transforms.data.image_reader import load_image
    from lungcad_transforms.data.image_writer import write_nifti

    config = ConfigParser()
    config.read_config(CONFIG_FILES)
    work = Path(tempfile.mkdtemp(prefix="bench_segmentation_"))
    config["output_dir"] = str(work / "out")
    config["device"] = "$torch.device('cpu')"
    network = config.get_parsed_content("network_def")
    checkpoint = Path(config.get_parsed_content("ckpt_path"))
    weights = "random"
    if checkpoint.is_file():
        network.load_state_dict(torch.load(checkpoint, map_location="cpu", weights_only=True))
        weights = (
            str(checkpoint.relative_to(REPO_ROOT))
            if checkpoint.is_relative_to(REPO_ROOT)
            else str(checkpoint)
        )
    network.eval()

    print(
        f"synthetic CT {tuple(args.shape)} at {tuple(args.spacing)} mm, torch threads {args.threads}, "
        f"weights {weights}",
        flush=True,
    )
    phantom = make_ct_phantom(tuple(args.shape), spacing=tuple(args.spacing), seed=7)
    path = write_nifti(phantom.hu, phantom.spacing, phantom.origin_lps, work / "ct512.nii.gz")
    del phantom
    entry = {"image": str(path), "seriesuid": "bench512", "modality": "CT"}
    summary: dict[str, object] = {
        "shape": list(args.shape), "spacing_mm": list(args.spacing), "threads": args.threads, "weights": weights,
    }  # fmt: skip

    if not args.skip_baseline:
        print("baseline: plain sliding window over the whole volume at native resolution", flush=True)
        base: dict[str, float] = {}
        image = _timed("load", base, load_image, entry)
        window = ScaleIntensityRange(a_min=-1000, a_max=400, b_min=0.0, b_max=1.0, clip=True)
        scaled = _timed("window", base, window, image)
        with torch.no_grad():
            logits = _timed(
                "sliding window (whole CT)", base, sliding_window_inference, scaled[None], (96, 96, 96), 4, network,
                overlap=0.25,
            )  # fmt: skip
        _timed("sigmoid + threshold", base, lambda x: torch.sigmoid(x) > 0.5, logits)
        base["total"] = round(sum(base.values()), 2)
        print(f"  {'total':<28s} {base['total']:7.2f} s", flush=True)
        summary["baseline_s"] = base
        del image, scaled, logits

    print("bundle: configs/inference.json components", flush=True)
    ours: dict[str, float] = {}
    preprocessing = config.get_parsed_content("preprocessing")
    inferer = config.get_parsed_content("inferer")
    # the evaluator's chain (probability -> candidates -> NIfTI), not `postprocessing`, which only makes the mask
    postprocessing = config.get_parsed_content("evaluator_postprocessing")
    data = _timed("load + lung crop + resample", ours, preprocessing, entry)
    cropped = tuple(int(s) for s in data["image"].shape[1:])
    with torch.no_grad():
        data["pred"] = _timed("sliding window (lung box)", ours, inferer, data["image"][None], network)[0]
    data = _timed("invert + candidates + save", ours, postprocessing, data)
    ours["total"] = round(sum(ours.values()), 2)
    print(f"  {'total':<28s} {ours['total']:7.2f} s", flush=True)
    summary.update(
        bundle_s=ours,
        lung_box_voxels_at_1mm=list(cropped),
        roi_size=config.get_parsed_content("patch_size"),
        target_spacing_mm=config.get_parsed_content("target_spacing"),
        candidates=len(data.get("candidates", [])),
    )
    if "baseline_s" in summary:
        summary["speedup"] = round(summary["baseline_s"]["total"] / ours["total"], 2)  # type: ignore[index]
    print(json.dumps(summary, indent=2))
    if args.out:
        from lungcad_transforms.utils.atomic import atomic_file

        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(args.out) as tmp:
            tmp.write_text(json.dumps(summary, indent=2) + "\n")
    import shutil

    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    sys.exit(main())
