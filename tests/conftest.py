from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

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


def _lidc_slab(real_data: Path, case: str) -> Path:
    """The DICOM series folder of a real LIDC-IDRI slab (``<case>/<study>/<series>``)."""
    series = sorted((real_data / "chest_ct/lidc_idri_slabs/small" / case).glob("*/*"))
    if not series:
        pytest.skip(f"{case} slab missing from the real test data")
    return series[0]


@pytest.fixture(scope="session")
def lidc_0003(real_data: Path) -> Path:
    return _lidc_slab(real_data, "LIDC-IDRI-0003")


@pytest.fixture(scope="session")
def lidc_0002(real_data: Path) -> Path:
    return _lidc_slab(real_data, "LIDC-IDRI-0002")


@pytest.fixture(scope="session")
def luna16_annotations(real_data: Path) -> Path:
    return real_data / "annotations/luna16/annotations.csv"


@pytest.fixture
def single_torch_thread():
    """Torch on one thread for the test: with tiny tensors, two OpenMP threads on a busy 2-core machine
    cost more in hand-offs than they bring."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def nodule_blob_patches():
    """Make ``(patches, labels)``: ``n`` three-scale candidate patches of lung, nodules in the odd items.

    Patches are (n, 3, *shape) of lung (0.14 +- 0.03 on the [0, 1] scale); every odd item (label 1) has a
    bright blob at the centre, of radius 3, 2 and 1.5 voxels at the three scales (the same nodule looks
    smaller at wider scales); ``jitter`` moves each blob up to a voxel off-centre.
    """

    def make(
        n: int, seed: int, shape=(12, 12, 12), jitter: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        g = torch.Generator().manual_seed(seed)
        x = 0.14 + 0.03 * torch.randn(n, 3, *shape, generator=g)
        labels = (torch.arange(n) % 2).float()[:, None]
        grid = torch.stack(
            torch.meshgrid(*[torch.arange(s, dtype=torch.float32) for s in shape], indexing="ij")
        )
        centres = torch.tensor([(s - 1) / 2 for s in shape]).expand(n, 3).clone()
        if jitter:
            centres += torch.randint(-1, 2, (n, 3), generator=g).float()
        for i in range(n):
            centre = centres[i][:, None, None, None]
            for scale, radius in enumerate((3.0, 2.0, 1.5)):
                blob = (((grid - centre) ** 2).sum(0) < radius**2).float()
                x[i, scale] += 0.6 * labels[i, 0] * blob
        return x, labels

    return make


@pytest.fixture(scope="session")
def writer_ct():
    """A small CT phantom for writer round trips: X != Y and sx != sy, so a swapped PixelSpacing or a
    transposed slice cannot pass."""
    from lungcad_transforms.apps.phantoms.ct import make_ct_phantom

    return make_ct_phantom(
        (72, 64, 24),
        spacing=(0.7, 0.8, 1.25),
        seed=7,
        nodule_kinds=("solid", "juxtapleural"),
        fov_circle=True,
    )
