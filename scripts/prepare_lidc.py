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
import sys

from lungcad_transforms.apps.lidc.prepare import prepare_lidc_dataset
from lungcad_transforms.apps.prepared.dataset import add_prepare_arguments, run_prepare


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--lidc_root", required=True, help="LIDC-IDRI folder: DICOM series and their XML, any depth"
    )
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
    add_prepare_arguments(parser)
    args = parser.parse_args(argv)
    return run_prepare(
        "prepare_lidc",
        prepare_lidc_dataset,
        args,
        args.lidc_root,
        level=args.level,
        min_readers=args.min_readers,
    )


if __name__ == "__main__":
    sys.exit(main())
