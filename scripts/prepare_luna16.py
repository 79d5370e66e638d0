#!/usr/bin/env python
"""Build sphere nodule masks from LUNA16 annotations.csv, and a MONAI datalist (for users with LUNA16 only).

    python scripts/prepare_luna16.py --luna16_root /data/LUNA16 \\
        --annotations /data/LUNA16/annotations.csv --out /data/luna16_prepared

Then train the segmentation bundle on it with ``--dataset_dir /data/luna16_prepared``. The logic lives in
:func:`lungcad_transforms.apps.luna16.prepare_luna16_dataset`.
"""

from __future__ import annotations

import argparse
import logging
import sys

from lungcad_transforms.apps.luna16.prepare import prepare_luna16_dataset
from lungcad_transforms.errors import InputError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--luna16_root", required=True, help="folder with the LUNA16 subset*/<seriesuid>.mhd scans"
    )
    parser.add_argument("--annotations", required=True, help="LUNA16 annotations.csv")
    parser.add_argument("--out", required=True, help="output folder: labels/, datalist.json, annotations.csv")
    parser.add_argument("--val_fraction", type=float, default=0.15)
    parser.add_argument("--test_fraction", type=float, default=0.15)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        datalist = prepare_luna16_dataset(
            args.luna16_root, args.annotations, args.out,
            val_fraction=args.val_fraction, test_fraction=args.test_fraction, seed=args.seed,
        )  # fmt: skip
    except InputError as err:
        print(f"prepare_luna16: error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {datalist}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
