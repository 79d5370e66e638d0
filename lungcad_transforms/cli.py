"""The ``lungcad`` command line: one sub-command per job, each a thin wrapper over the library.

Library imports happen inside the sub-commands so that ``lungcad --help`` answers at once.

"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import warnings
from collections.abc import Sequence

from lungcad_transforms.apps.luna16.evaluation import add_froc_arguments, froc_command
from lungcad_transforms.errors import InputError

__all__ = ["build_parser", "main"]

# Apps that bring their own sub-command expose ``register(subparsers)`` in a light ``cli`` module (argparse
# only, library imports inside the command) so that each app owns its arguments and ``--help`` stays fast.
APP_COMMANDS: tuple[str, ...] = (
    "lungcad_transforms.apps.hybrid.cli",
    "lungcad_transforms.apps.cad.cli",
    "lungcad_transforms.apps.zoo.cli",
)


def _cmd_lungmask(args: argparse.Namespace) -> int:
    from lungcad_transforms.apps.cad.lungmask import mask_lungs_file

    result = mask_lungs_file(
        args.input, args.output, dilation_mm=args.dilation_mm, threshold_hu=args.threshold
    )
    print(f"lung mask: {result.path}")
    print(f"lung volume: {result.volume_ml:.1f} ml in {result.n_components} component(s)")
    return 0


def _cmd_phantom(args: argparse.Namespace) -> int:
    from lungcad_transforms.apps.phantoms.dataset import write_phantom_dataset

    datalist = write_phantom_dataset(
        args.out, n_cases=args.cases, seed=args.seed, shape=tuple(args.shape), formats=tuple(args.format)
    )
    print(f"phantom dataset: {args.out}")
    print(f"datalist: {datalist}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from lungcad_transforms.apps.cad.demo import run_demo

    outputs = run_demo(args.out, seed=args.seed)
    print("lungcad demo finished. Outputs:")
    for name, path in outputs.items():
        print(f"  {name}: {path}")
    return 0


def _cmd_ctgan(args: argparse.Namespace) -> int:
    from lungcad_transforms.apps.ctgan.edit_files import edit_file

    out = edit_file(args.input, args.output, args.edit, args.at, args.diameter, bundle_dir=args.bundle_dir)
    print(f"{args.edit}: {out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lungcad", description="Lung-cancer CAD toolkit (MONAI bundles).")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("lungmask", help="mask the lungs of a CT scan (DICOM series folder or image file)")
    p.add_argument("input", help="DICOM series folder, or a NIfTI / MetaImage (.mhd/.mha) / NRRD file")
    p.add_argument("output", help="mask to write, .nii.gz (aligned with the input in world space)")
    p.add_argument(
        "--dilation-mm",
        type=float,
        default=10.0,
        help="grow the mask by this many mm so juxtapleural nodules stay inside (0: off; default 10)",
    )
    p.add_argument("--threshold", type=float, default=-350.0, help="air/tissue threshold in HU")
    p.set_defaults(func=_cmd_lungmask)

    p = sub.add_parser("phantom", help="write a synthetic CT dataset with known nodules")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--cases", type=int, default=4, help="number of phantom scans")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--shape", type=int, nargs=3, default=[128, 128, 128], metavar=("X", "Y", "Z"))
    p.add_argument("--format", nargs="+", default=["dicom", "nifti"], choices=["dicom", "nifti", "mhd"])
    p.set_defaults(func=_cmd_phantom)

    p = sub.add_parser("demo", help="the main job on the embedded synthetic default")
    p.add_argument("--out", default="outputs/demo", help="output folder")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser(
        "froc", help="LUNA16 FROC / CPM of a results CSV, as the official LUNA16 script computes it"
    )
    add_froc_arguments(p)
    p.set_defaults(func=froc_command)

    p = sub.add_parser("ctgan", help="inject or remove a lung nodule with the CT-GAN bundle")
    p.add_argument("edit", choices=["inject", "remove"])
    p.add_argument("input", help="CT: DICOM series folder, NIfTI or MetaImage")
    p.add_argument("output", help="same form as the input: a folder for DICOM, else .nii.gz / .mha / .mhd")
    p.add_argument(
        "--at", type=float, nargs=3, required=True, metavar=("X", "Y", "Z"), help="LPS mm (LUNA16)"
    )
    p.add_argument("--diameter", type=float, default=8.0, help="nodule diameter in mm (inject; default 8)")
    p.add_argument(
        "--bundle-dir", default=None, help="trained or exported CT-GAN bundle (default: the repository's)"
    )
    p.set_defaults(func=_cmd_ctgan)
    for module in APP_COMMANDS:
        importlib.import_module(module).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    # MONAI announces at every DICOM read that the optional GPU decoder is absent; that is expected here
    logging.getLogger("monai.data.nvimgcodec_pydicom_plugin").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=".*nvImageCodec.*")
    try:
        return int(args.func(args) or 0)
    except InputError as err:
        print(f"lungcad {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
