"""The CAD jobs run from the command line: lung masking of a scan, the demo."""

from __future__ import annotations

from lungcad_transforms.apps.cad.demo import run_demo
from lungcad_transforms.apps.cad.lungmask import LungMaskResult, mask_lungs_file
