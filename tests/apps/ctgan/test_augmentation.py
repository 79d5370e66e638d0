"""RandInjectNoduled's placement rules: deep inside the lungs, clear of real nodules and of earlier injections."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="module")
def phantom_scan(tmp_path_factory):
    from lungcad_transforms.apps.phantoms.ct import make_ct_phantom
    from lungcad_transforms.data.image_reader import load_image
    from lungcad_transforms.data.image_writer import write_nifti

    ct = make_ct_phantom((96, 96, 64), spacing=(1.5, 1.5, 2.0), seed=21, nodule_diameter_mm=(6.0, 12.0))
    path = write_nifti(ct.hu, ct.spacing, ct.origin_lps, tmp_path_factory.mktemp("scan") / "ct.nii.gz")
    nodules = [{"coordX": n.center_lps[0], "coordY": n.center_lps[1], "coordZ": n.center_lps[2],
                "diameter_mm": n.diameter_mm} for n in ct.nodules]  # fmt: skip
    return load_image(path), nodules


def test_injections_keep_their_margin_and_their_distance(phantom_scan, tiny_gan_bundle, single_torch_thread):
    from scipy import ndimage

    from lungcad_transforms.apps.ctgan import MASK_SIZE, NoduleEditor, RandInjectNoduled
    from lungcad_transforms.data.coords import world_to_voxel

    ct, nodules = phantom_scan
    editor = NoduleEditor(tiny_gan_bundle)
    t = RandInjectNoduled("image", editor, prob=1.0, diameter_mm=(5.0, 8.0), margin_mm=12.0, avoid_key="real",
                          max_tries=200).set_random_state(4)  # fmt: skip
    data = {"image": ct, "real": nodules}
    for _ in range(3):
        data = t(data)
    rows = data["injected_nodules"]
    assert len(rows) == 3
    depth = ndimage.distance_transform_edt(editor.lung_mask(ct), sampling=(1.5, 1.5, 2.0))
    centres = np.array([[r["coordX"], r["coordY"], r["coordZ"]] for r in rows])
    for c in centres:
        v = np.floor(world_to_voxel(c, ct.affine.numpy())[0] + 0.5).astype(int)
        assert depth[tuple(v)] >= 12.0 - 1.5  # drawn at least 12 mm deep (up to a voxel of rounding)
        for n in nodules:
            gap = np.linalg.norm(c - [n["coordX"], n["coordY"], n["coordZ"]])
            assert gap >= MASK_SIZE * np.sqrt(3) / 2 + n["diameter_mm"] / 2
    pairwise = np.linalg.norm(centres[:, None] - centres[None], axis=-1)[np.triu_indices(3, 1)]
    assert np.all(pairwise >= MASK_SIZE * np.sqrt(3) / 2)
    # all three edits are in the output scan, the input scan is untouched
    assert not np.array_equal(data["image"].numpy(), ct.numpy())
    assert data["real"] is nodules and len(nodules) > 0


def test_a_scan_without_room_is_returned_unchanged(phantom_scan, tiny_gan_bundle):
    from lungcad_transforms.apps.ctgan import NoduleEditor, RandInjectNoduled

    ct, _ = phantom_scan
    t = RandInjectNoduled("image", NoduleEditor(tiny_gan_bundle), prob=1.0, margin_mm=500.0)
    out = t({"image": ct})
    assert out["image"] is ct and "injected_nodules" not in out
