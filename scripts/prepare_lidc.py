#!/usr/bin/env python
"""Turn LIDC-IDRI reader XML into 50 %-consensus nodule masks and a MONAI datalist.

    python scripts/prepare_lidc.py --lidc_root /data/LIDC-IDRI --out /data/lidc_prepared

Then train the segmentation bundle on it:

    python -m monai.bundle run training \\
        --config_file bundles/lung_nodule_ct_segmentation/configs/train.json --dataset_dir /data/lidc_prepared

The logic lives in :func:`lungcad_transforms.apps.lidc.prepare_lidc_dataset`.
"""

from __future__ import annotations

import argparse
import logging
import sys

from lungcad_transforms.apps.lidc.prepare import prepare_lidc_dataset
from lungcad_transforms.errors import InputError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--lidc_root", required=True, help="LIDC-IDRI folder: DICOM series and their XML, any depth"
    )
    parser.add_argument("--out", required=True, help="output folder: labels/, datalist.json, annotations.csv")
    parser.add_argument(
        "--level",
        type=float,
        default=0.5,
        help="fraction of a nodule's readers that must include a voxel (default 0.5)",
    )
    parser.add_argument(
        "--min_readers",
        type=int,
        default=1,
        help="leave out nodules marked by fewer readers (LUNA16 used 3; default 1)",
    )
    parser.add_argument("--val_fraction", type=float, default=0.15)
    parser.add_argument("--test_fraction", type=float, default=0.15)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        datalist = prepare_lidc_dataset(
            args.lidc_root, args.out, level=args.level, min_readers=args.min_readers,
            val_fraction=args.val_fraction, test_fraction=args.test_fraction, seed=args.seed,
        )  # fmt: skip
    except InputError as err:
        print(f"prepare_lidc: error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {datalist}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
