from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def real_data_root() -> Path:
    """Where the real public fixtures live: ``$LUNGCAD_TEST_DATA`` or ``../shared/data``."""
    return Path(os.environ.get("LUNGCAD_TEST_DATA", REPO_ROOT.parent / "shared" / "data")) / "real"


@pytest.fixture(scope="session")
def real_data() -> Path:
    root = real_data_root()
    if not root.is_dir():
        pytest.skip(f"real test data not found at {root} (set LUNGCAD_TEST_DATA to the folder holding real/)")
    return root


@pytest.fixture(scope="session")
def lidc_0003(real_data: Path) -> Path:
    """The real LIDC-IDRI-0003 slab: one DICOM series folder."""
    series = sorted((real_data / "chest_ct/lidc_idri_slabs/small/LIDC-IDRI-0003").glob("*/*"))
    if not series:
        pytest.skip("LIDC-IDRI-0003 slab missing from the real test data")
    return series[0]


@pytest.fixture(scope="session")
def lidc_0002(real_data: Path) -> Path:
    series = sorted((real_data / "chest_ct/lidc_idri_slabs/small/LIDC-IDRI-0002").glob("*/*"))
    if not series:
        pytest.skip("LIDC-IDRI-0002 slab missing from the real test data")
    return series[0]


@pytest.fixture(scope="session")
def luna16_annotations(real_data: Path) -> Path:
    return real_data / "annotations/luna16/annotations.csv"
