"""The hybrid dataset on real chest CT (CPTAC whole chest, LIDC slabs) and on phantom folders; bad input."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from lungcad_transforms.apps.hybrid.dataset import write_hybrid_dataset
from lungcad_transforms.cli import main
from lungcad_transforms.data.coords import voxel_to_world, world_to_voxel
from lungcad_transforms.data.tables import read_annotations, read_candidates, read_seriesuids
from lungcad_transforms.errors import InputError

CPTAC_UID = "C3N-00247_chest_ct_B70f"
# its own unlabelled nodule (ATTRIBUTION: centre near LPS (-82, -191, -192) mm, about 2 cm)
CPTAC_LESION = {
    "seriesuid": CPTAC_UID,
    "coordX": -82.0,
    "coordY": -191.0,
    "coordZ": -192.0,
    "diameter_mm": 30.0,
}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def real_hybrid(real_data: Path, tmp_path_factory) -> Path:
    chest = real_data / "chest_ct"
    out = tmp_path_factory.mktemp("hybrid") / "ds"
    cptac = chest / "cptac_c3n00247_ct" / f"{CPTAC_UID}.nii.gz"
    before = _sha(cptac)
    write_hybrid_dataset(
        [chest / "cptac_c3n00247_ct", chest / "lidc_idri_slabs" / "small"], out, cases_per_background=3,
        test_backgrounds=["LIDC-IDRI"], seed=1,
        known_lesions=[real_data / "annotations" / "luna16" / "annotations.csv", CPTAC_LESION],
    )  # fmt: skip
    assert _sha(cptac) == before  # inputs never modified
    return out


def test_splits_are_held_out_by_background_scan(real_hybrid: Path):
    datalist = json.loads((real_hybrid / "datalist.json").read_text())
    backgrounds = {s: {e["background"] for e in datalist[s]} for s in datalist}
    assert backgrounds["training"] == backgrounds["validation"] == {CPTAC_UID}
    assert len(backgrounds["test"]) == 2 and CPTAC_UID not in backgrounds["test"]
    assert len(datalist["training"]) == 2 and len(datalist["validation"]) == 1
    for split, entries in datalist.items():
        assert read_seriesuids(real_hybrid / f"seriesuids_{split}.csv") == [e["seriesuid"] for e in entries]


def test_every_nodule_is_labelled_inside_the_lungs_of_its_case(real_hybrid: Path):
    datalist = json.loads((real_hybrid / "datalist.json").read_text())
    entries = {e["seriesuid"]: e for s in datalist.values() for e in s}
    nodules = read_annotations(real_hybrid / "annotations.csv")
    assert len(nodules) == sum(e["n_nodules"] for e in entries.values()) >= 4
    for row in nodules:
        e = entries[row["seriesuid"]]
        image = nib.load(real_hybrid / e["image"])
        labels = np.asarray(nib.load(real_hybrid / e["label"]).dataobj)
        lungs = np.asarray(nib.load(real_hybrid / e["lungs"]).dataobj)
        centre = np.rint(
            world_to_voxel(np.array([[row["coordX"], row["coordY"], row["coordZ"]]]), image.affine)[0]
        )
        i, j, k = centre.astype(int)
        assert labels[i, j, k] > 0 and lungs[i, j, k] == 1
        hu = np.asarray(image.dataobj)
        assert hu[labels > 0].mean() > -800  # denser than the lung it sits in
    # hard negatives from the real anatomy, outside every nodule
    candidates = read_candidates(real_hybrid / "candidates.csv")
    negatives = [c for c in candidates if c["class"] == 0]
    assert len(negatives) >= 3 * len(entries)
    for c in negatives:
        for n in nodules:
            if n["seriesuid"] == c["seriesuid"]:
                d = np.linalg.norm([c[a] - n[a] for a in ("coordX", "coordY", "coordZ")])
                assert d > n["diameter_mm"] / 2


def test_known_lesions_stay_out_of_training_and_are_excluded_in_test(real_hybrid: Path):
    datalist = json.loads((real_hybrid / "datalist.json").read_text())
    for entry in datalist["training"] + datalist["validation"]:
        image = nib.load(real_hybrid / entry["image"])
        corners = np.array([[0, 0, 0], np.asarray(image.shape) - 1], dtype=float)
        lo, hi = np.sort(voxel_to_world(corners, image.affine), axis=0)
        lesion = np.array([CPTAC_LESION[a] for a in ("coordX", "coordY", "coordZ")])
        gap = np.linalg.norm(np.clip(lesion, lo, hi) - lesion)
        assert gap >= 25.0  # the window keeps clear of the real nodule
    excluded = read_annotations(real_hybrid / "excluded.csv")
    test_uids = {e["seriesuid"] for e in datalist["test"]}
    # LIDC-0003's LUNA16 nodule in its slab and LIDC-0002's... only those whose sphere reaches the slab
    assert excluded and {r["seriesuid"] for r in excluded} <= test_uids
    assert any(abs(r["coordX"] - 72.2867) < 0.01 for r in excluded)
    manifest = json.loads((real_hybrid / "hybrid_dataset.json").read_text())
    assert manifest["backgrounds"]["training"] == [CPTAC_UID]


def _phantom_folder(root: Path, lungs="both", shape=(96, 96, 48)) -> Path:
    from lungcad_transforms.apps.phantoms.ct import make_ct_phantom
    from lungcad_transforms.data.image_writer import write_nifti

    ct = make_ct_phantom(shape, spacing=(1.6, 1.6, 2.5), seed=3, n_nodules=0, lungs=lungs)
    write_nifti(ct.hu, ct.spacing, ct.origin_lps, root / f"bg_{lungs}.nii.gz")
    return root


def test_cli_writes_a_datalist_from_a_folder_of_scans(tmp_path: Path, capsys):
    backgrounds = _phantom_folder(tmp_path / "bgs")
    out = tmp_path / "hyb"
    rc = main(["synth-nodules", "--backgrounds", str(backgrounds), "--out", str(out), "--cases", "2",
               "--window-mm", "96", "96", "60", "--nodules", "1", "2"])  # fmt: skip
    assert rc == 0 and "datalist" in capsys.readouterr().out
    datalist = json.loads((out / "datalist.json").read_text())
    assert len(datalist["training"]) + len(datalist["validation"]) == 2
    assert (out / "annotations.csv").is_file() and (out / "candidates_training.csv").is_file()


def test_bad_backgrounds_are_reported_and_nothing_is_written(tmp_path: Path, capsys):
    # a scan too short for the window: the only background, so nothing usable
    backgrounds = _phantom_folder(tmp_path / "short", shape=(96, 96, 16))
    out = tmp_path / "hyb"
    with pytest.raises(InputError, match="too short for the window"):
        write_hybrid_dataset(backgrounds, out, window_mm=(96, 96, 64))
    assert not out.exists()
    # no lungs in view: the CLI says so and exits 2
    no_lungs = _phantom_folder(tmp_path / "abdomen", lungs="none")
    rc = main(["synth-nodules", "--backgrounds", str(no_lungs), "--out", str(out)])
    assert rc == 2 and "no lungs in view" in capsys.readouterr().err
    assert not out.exists()
    # an unusable scan next to a usable one is skipped with its reason
    _phantom_folder(no_lungs, lungs="both")
    write_hybrid_dataset(no_lungs, out, cases_per_background=1, window_mm=(96, 96, 60))
    skipped = json.loads((out / "hybrid_dataset.json").read_text())["skipped"]
    assert any("no lungs in view" in line for line in skipped)
    with pytest.raises(InputError, match="holds other content"):
        write_hybrid_dataset(no_lungs, out)
