"""The phantoms are seeded: the same arguments must give the same voxels, release after release.

The bundles' measured figures (FROC, Dice, ...) are computed on these phantoms, so a refactoring that
changes a single voxel changes them. Each digest below was computed before the phantom modules were
split into one-concern modules, and pins the image, its label maps and its nodules byte for byte.
If a change is meant to alter the phantoms, recompute the digests (``_digest`` below) and say so in
the change: the bundles' figures have to be measured again.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from lungcad_transforms.apps.phantoms.ct import make_ct_phantom
from lungcad_transforms.apps.phantoms.pet_mr import make_mr_phantom, make_pet_phantom


def _digest(phantom) -> str:
    h = hashlib.sha256()
    if phantom.modality == "CT":
        arrays = [phantom.image, phantom.nodule_labels, phantom.tissues, phantom.lungs]
        truth = phantom.nodules
    else:
        arrays = [phantom.image, phantom.lesion_labels, phantom.tissues]
        truth = (phantom.lesions, getattr(phantom, "lesion_suv", None))
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    h.update(repr((truth, phantom.spacing, phantom.origin_lps, phantom.seriesuid)).encode())
    return h.hexdigest()


@pytest.fixture(scope="module")
def ct():
    return make_ct_phantom(
        (64, 60, 40),
        spacing=(1.1, 1.2, 2.0),
        seed=1,
        nodule_kinds=("solid", "juxtapleural", "juxtavascular"),
        contrast=True,
        fov_circle=True,
    )


def test_ct_phantom_is_stable(ct):
    assert _digest(ct) == DIGESTS["ct"]


def test_pet_phantom_on_a_ct_reference_is_stable(ct):
    assert _digest(make_pet_phantom((32, 30, 20), reference=ct)) == DIGESTS["pet_ref"]


def test_mr_phantom_is_stable():
    assert _digest(make_mr_phantom((48, 40, 16), seed=2, lungs="left")) == DIGESTS["mr"]


def test_abdomen_ct_phantom_is_stable():
    ct = make_ct_phantom((40, 40, 24), seed=3, lungs="none")
    assert _digest(ct) == DIGESTS["ct_abdomen"]


DIGESTS = {
    "ct": "54708f7bdf63049d60ed8f2ccc815912ef4c8d55252bf7b7be27aff98bffc2cd",
    "pet_ref": "3bc8fe4309267995afdecb6ca77493c2d3efcb0b984ebdd32cec677829cc70f5",
    "mr": "7db920d8e6be1c3c1f32cca1d6d810c8a6cf3be9ae783c1d7b7d2a4fd69da833",
    "ct_abdomen": "852a798b7c531bd7ce83cc64700ef2ff52c6ea950b147cd0f3a7ed93a2ef6378",
}
