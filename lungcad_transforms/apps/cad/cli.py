"""``lungcad detect``: the sub-command of the CAD app (argparse only; the library loads inside the command)."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["register"]


def _cmd_detect(args: argparse.Namespace) -> int:
    from lungcad_transforms.apps.cad.detect import detect

    run = detect(
        args.input,
        args.out,
        bundle_dir=args.bundle_dir,
        threshold=args.threshold,
        device=args.device,
        progress=not args.no_progress,
        render=not args.no_render,
    )
    for uid, why in run.skipped:
        print(f"skipped {uid}: {why}")
    for study in run.studies:
        print(f"{study.seriesuid}: {len(study.nodules)} nodule(s), report {study.folder / 'report.html'}")
    print(f"summary: {run.summary}")
    if not run.studies:
        print("lungcad detect: no study could be processed")
        return 2
    return 0


def register(subparsers: Any) -> None:
    """Add ``detect`` to the ``lungcad`` command's sub-parsers."""
    p = subparsers.add_parser(
        "detect", help="find, score, measure and explain lung nodules in CT studies (the whole CAD chain)"
    )
    p.add_argument(
        "input",
        help="DICOM folder (any depth, several series), NIfTI / MetaImage / NRRD, or a folder of them",
    )
    p.add_argument("--out", required=True, help="output folder: one sub-folder per study and summary.csv")
    p.add_argument(
        "--bundle-dir",
        default=None,
        help="folder holding trained lung_nodule_ct_segmentation and lung_nodule_ct_fp_reduction bundles "
        "(default: the repository's bundles/)",
    )
    p.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="nodule probability to keep, the geometric mean of the FP-reduction and segmentation bundles' "
        "(default: the FP bundle's nodule_threshold)",
    )
    p.add_argument(
        "--device", default=None, help="torch device, e.g. cpu or cuda:0 (default: CUDA when present)"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--no-render", action="store_true", help="skip the volume renderings and montages")
    p.set_defaults(func=_cmd_detect)
