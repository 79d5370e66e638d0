"""A CT-GAN edit of a real DICOM CT series: derived series, same geometry, only the cube changed, headers kept."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

# edited elements of a derived image; every other element of every file must be equal
DERIVED = {"ImageType", "SeriesInstanceUID", "SOPInstanceUID", "DerivationDescription", "PixelData"}


@pytest.fixture(scope="module")
def real_ct_series(real_data: Path) -> Path:
    # the real DICOM CT with room for the 32 mm cube: 10 slices of 4.25 mm (the LIDC slabs are thinner:
    # 11 x 2.5 mm and 12 x 1.25 mm, and an edit there is refused, see the bundle test)
    series = real_data / "pet" / "nsclc_radiogenomics_R01-005_petct_slab" / "CT_dicom"
    if not series.is_dir():
        pytest.skip(f"real DICOM CT slab missing: {series}")
    return series


def test_injection_into_a_real_dicom_series_writes_a_faithful_derived_series(
    real_ct_series, tiny_gan_bundle, tmp_path
):
    import itk
    import pydicom

    from lungcad_transforms.apps.ctgan import NoduleEditor, edit_file
    from lungcad_transforms.data.coords import voxel_to_world
    from lungcad_transforms.data.image_reader import load_image

    ct = load_image(real_ct_series)
    # the slab images the thighs, not the chest: the lung check is off, the DICOM plumbing is what is tested
    at = voxel_to_world([(s - 1) / 2 for s in ct.shape[1:]], ct.affine.numpy())[0]
    out = tmp_path / "derived"
    edit_file(real_ct_series, out, "inject", at, 8.0, editor=NoduleEditor(tiny_gan_bundle, check_lungs=False))

    before = {f.name: pydicom.dcmread(f) for f in sorted(real_ct_series.iterdir())}
    after = {f.name: pydicom.dcmread(f) for f in sorted(out.iterdir()) if f.suffix == ".dcm"}
    assert before.keys() == after.keys()
    new_series = {a.SeriesInstanceUID for a in after.values()}
    assert len(new_series) == 1 and new_series.isdisjoint({b.SeriesInstanceUID for b in before.values()})
    changed_slices = 0
    for name, a in after.items():
        b = before[name]
        assert a.ImageType[:2] == ["DERIVED", "SECONDARY"] and "CT-GAN inject" in a.DerivationDescription
        assert (
            a.SOPInstanceUID != b.SOPInstanceUID
            and a.file_meta.MediaStorageSOPInstanceUID == a.SOPInstanceUID
        )
        for elem in b:
            if elem.keyword not in DERIVED:
                assert a[elem.tag].value == elem.value, f"{name}: {elem.keyword} changed"
        assert a.pixel_array.dtype == b.pixel_array.dtype and a.pixel_array.shape == b.pixel_array.shape
        changed_slices += int(not np.array_equal(a.pixel_array, b.pixel_array))
    # the 16 mm box spans at most 5 of the 4.25 mm slices; the slices outside it are bit for bit the same
    assert 1 <= changed_slices <= 5

    # ITK reads the derived series back with the original geometry; only voxels of the box changed
    src_itk, out_itk = itk.imread(str(real_ct_series)), itk.imread(str(out))
    assert np.allclose(itk.origin(src_itk), itk.origin(out_itk)) and np.allclose(
        itk.spacing(src_itk), itk.spacing(out_itk)
    )
    assert np.allclose(
        itk.array_from_matrix(src_itk.GetDirection()), itk.array_from_matrix(out_itk.GetDirection())
    )
    edited = load_image(out)
    assert edited.shape == ct.shape and np.allclose(edited.affine, ct.affine)
    changed = np.argwhere(edited.numpy()[0] != ct.numpy()[0])
    spacing = np.sqrt((ct.affine.numpy()[:3, :3] ** 2).sum(0))
    centre = np.linalg.solve(ct.affine.numpy(), [*(at * [-1, -1, 1]), 1.0])[:3]
    assert len(changed) > 0 and np.all(np.abs(changed - centre) * spacing <= 8.0 + spacing)
    log = (out.parent / "edits.csv").read_text().splitlines()
    assert log[0].startswith("seriesuid,coordX,coordY,coordZ") and len(log) == 2
