"""``lungcad synth-nodules``: a hybrid training set from a folder of the user's own chest CTs (argparse only)."""

from __future__ import annotations

import argparse

__all__ = ["register"]


def _run(args: argparse.Namespace) -> int:
    from lungcad_transforms.apps.hybrid.dataset import write_hybrid_dataset

    datalist = write_hybrid_dataset(
        args.backgrounds,
        args.out,
        cases_per_background=args.cases,
        test_cases_per_background=args.test_cases,
        nodules_per_case=tuple(args.nodules),
        window_mm=None if args.whole_scans else tuple(args.window_mm),
        test_backgrounds=args.test,
        val_backgrounds=args.val,
        known_lesions=args.known_lesions,
        seed=args.seed,
        overwrite=args.overwrite,
    )
    print(f"hybrid dataset: {args.out}")
    print(f"datalist: {datalist}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``synth-nodules`` sub-command to the ``lungcad`` parser."""
    p = subparsers.add_parser(
        "synth-nodules",
        help="insert synthetic nodules into your own unannotated chest CTs: a training set for the CT bundles",
    )
    p.add_argument(
        "--backgrounds", required=True, nargs="+", help="folder(s) of chest CTs (DICOM, NIfTI, MetaImage)"
    )
    p.add_argument(
        "--out", required=True, help="dataset folder to write (datalist.json, images, labels, CSVs)"
    )
    p.add_argument("--cases", type=int, default=8, help="training cases per training scan (default 8)")
    p.add_argument("--test-cases", type=int, default=1, help="cases per test scan (whole scans; default 1)")
    p.add_argument(
        "--nodules", type=int, nargs=2, default=[1, 4], metavar=("MIN", "MAX"), help="nodules per case"
    )
    p.add_argument("--window-mm", type=float, nargs=3, default=[128.0, 128.0, 64.0], metavar=("X", "Y", "Z"),
                   help="training window size in mm (default 128 128 64)")  # fmt: skip
    p.add_argument("--whole-scans", action="store_true", help="training cases are whole scans, not windows")
    p.add_argument("--test", nargs="+", default=None, metavar="PATTERN",
                   help="scans (seriesuid or path substring / glob) held out for test; default: a quarter of them")  # fmt: skip
    p.add_argument("--val", nargs="+", default=None, metavar="PATTERN", help="scans held out for validation")
    p.add_argument("--known-lesions", nargs="+", default=None, metavar="CSV",
                   help="LUNA16 annotations of lesions already in the scans: kept out of training, excluded in test")  # fmt: skip
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out folder")
    p.set_defaults(func=_run)
