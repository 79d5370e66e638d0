#!/usr/bin/env python
"""Build sphere nodule masks from LUNA16 annotations.csv, and a MONAI datalist (for users with LUNA16 only).

    python scripts/prepare_luna16.py --luna16_root /data/LUNA16 \\
        --annotations /data/LUNA16/annotations.csv --out /data/luna16_prepared

Then train the segmentation bundle on it with ``--dataset_dir /data/luna16_prepared``. The logic lives in
:func:`lungcad_transforms.apps.luna16.prepare_luna16_dataset`.
"""

from __future__ import annotations

import argparse
import sys

from lungcad_transforms.apps.luna16.prepare import prepare_luna16_dataset
from lungcad_transforms.apps.prepared.dataset import add_prepare_arguments, run_prepare


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--luna16_root", required=True, help="folder with the LUNA16 subset*/<seriesuid>.mhd scans"
    )
    parser.add_argument("--annotations", required=True, help="LUNA16 annotations.csv")
    add_prepare_arguments(parser)
    args = parser.parse_args(argv)
    return run_prepare("prepare_luna16", prepare_luna16_dataset, args, args.luna16_root, args.annotations)


if __name__ == "__main__":
    sys.exit(main())
