"""``lungcad export-bundle`` / ``import-bundle``: the zoo app's sub-commands (argparse only; the library loads
inside the commands)."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["register"]


def _cmd_export(args: argparse.Namespace) -> int:
    from lungcad_transforms.apps.zoo.export import export_bundle

    out = export_bundle(
        args.bundle,
        args.out,
        weights=not args.no_weights,
        force=args.force,
        zip_output=args.zip,
        weights_url=args.weights_url,
    )
    if args.zip:
        print(f"exported {args.bundle} to {out} (checksums in {out.parent / 'model_info.json'})")
    else:
        print(
            f"exported {args.bundle} to {out}; run it from there: python -m monai.bundle run --config_file ..."
        )
    return 0


def _cmd_import(args: argparse.Namespace) -> int:
    from lungcad_transforms.apps.zoo.archive import import_bundle

    dest = import_bundle(args.zip, args.into, sha256=args.sha256, force=args.force)
    print(f"imported {args.zip} to {dest}")
    return 0


def register(subparsers: Any) -> None:
    """Add ``export-bundle`` and ``import-bundle`` to the ``lungcad`` command's sub-parsers."""
    p = subparsers.add_parser(
        "export-bundle",
        help="export a bundle as a self-contained MONAI bundle folder or zip (Model Zoo layout)",
    )
    p.add_argument("bundle", help="bundle name (e.g. lung_nodule_ct_segmentation) or bundle folder")
    p.add_argument("--out", required=True, help="folder to create; with --zip the zip file to write")
    p.add_argument("--zip", action="store_true", help="write a zip (and model_info.json beside it)")
    p.add_argument("--no-weights", action="store_true", help="leave the trained models/*.pt out")
    p.add_argument(
        "--weights-url", default=None, help="where the weights will be published, for large_files.yml's url"
    )
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    p.set_defaults(func=_cmd_export)

    p = subparsers.add_parser(
        "import-bundle", help="unpack a bundle zip after checking its checksum and entries (no .., no links)"
    )
    p.add_argument("zip", help="the bundle zip")
    p.add_argument("--into", required=True, help="folder to unpack into (the bundle lands in <into>/<name>)")
    p.add_argument(
        "--sha256", default=None, help="expected SHA-256 (default: the one in model_info.json beside the zip)"
    )
    p.add_argument("--force", action="store_true", help="replace an existing bundle folder")
    p.set_defaults(func=_cmd_import)
