"""`lungcad detect` end to end on a phantom DICOM study and a batch with bad studies (tiny trained bundles)."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess

import nibabel as nib
import numpy as np
import pydicom
import pytest

from lungcad_transforms.apps.cad.bundles import (
    FP_REDUCTION_BUNDLE,
    SEGMENTATION_BUNDLE,
    file_sha256,
    resolve_bundles,
)
from lungcad_transforms.cli import main

pytestmark = pytest.mark.slow

pytest.importorskip("highdicom")


@pytest.fixture(scope="session")
def tiny_bundles(tmp_path_factory):
    """Both CT bundles trained for one tiny epoch on tiny built-in-style data (weights in a temporary folder)."""
    from lungcad_transforms.apps.cad.training import ensure_trained_bundles
    from lungcad_transforms.apps.detection.phantom_candidates import ensure_fp_dataset
    from lungcad_transforms.apps.phantoms.dataset import ensure_phantom_dataset

    root = tmp_path_factory.mktemp("cad_bundles")
    seg_data = ensure_phantom_dataset(root / "seg_data", n_train=2, n_val=1, n_test=1, shape=(64, 64, 48))
    fp_data = ensure_fp_dataset(root / "fp_data", 2, 1, 1, shape=(64, 64, 48), spacing=(1.5, 1.5, 2.0))
    overrides = {
        SEGMENTATION_BUNDLE: ["--dataset_dir", seg_data, "--epochs", "1", "--val_interval", "1",
                              "--patch_size", "[32,32,32]", "--num_samples", "1"],
        FP_REDUCTION_BUNDLE: ["--dataset_dir", fp_data, "--epochs", "1", "--samples_per_epoch", "32",
                              "--batch_size", "16", "--val_interval", "1"],
    }  # fmt: skip
    source = resolve_bundles(None)
    if not source.missing_weights():
        return source
    return ensure_trained_bundles(source, root / "bundles", overrides)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    from lungcad_transforms.apps.phantoms.ct import make_ct_phantom
    from lungcad_transforms.data.dicom_writer import write_dicom_series

    root = tmp_path_factory.mktemp("study")
    ct = make_ct_phantom((96, 96, 64), spacing=(1.0, 1.0, 1.5), seed=5, nodule_kinds=("solid", "part_solid"))
    series = write_dicom_series(
        ct.hu,
        ct.spacing,
        ct.origin_lps,
        root / "in" / "patient" / "ct",
        modality="CT",
        seriesuid=ct.seriesuid,
    )
    return ct, series


@pytest.fixture(scope="module")
def detected(tiny_bundles, study, tmp_path_factory):
    from lungcad_transforms.apps.cad.detect import detect

    _, series = study
    out = tmp_path_factory.mktemp("out")
    # threshold 0 keeps every candidate: the tiny networks' scores say nothing, the chain is what is tested
    return detect(series.parent.parent, out, tiny_bundles, threshold=0.0, progress=False), out


def test_fp_bundle_trains_on_the_segmentation_bundles_own_candidates(tiny_bundles):
    from lungcad_transforms.data.tables import read_candidates

    table = tiny_bundles.fp_reduction / "seg_candidates" / "candidates.csv"
    seg_data_dir = tiny_bundles.segmentation.parent.parent / "seg_data"
    if not table.is_file() or not seg_data_dir.is_dir():
        pytest.skip("the repository's trained weights were used: the chain was not trained here")
    seg_data = json.loads((seg_data_dir / "datalist.json").read_text())
    scans = {e["seriesuid"] for entries in seg_data.values() for e in entries}
    rows = read_candidates(table)
    # every row is a candidate of the segmentation bundle on its own scans (or a nodule it missed), labelled
    assert rows and {r["seriesuid"] for r in rows} <= scans
    assert {int(r["class"]) for r in rows} <= {0, 1} and any(int(r["class"]) == 1 for r in rows)
    for split in ("training", "validation", "test"):
        assert (table.parent / split / "candidates.csv").is_file()
    assert (tiny_bundles.fp_reduction / "models" / "model.pt").is_file()


def test_study_folder_holds_every_output(detected, study):
    run, out = detected
    ct, series = study
    assert [s.seriesuid for s in run.studies] == [ct.seriesuid] and not run.skipped
    folder = out / ct.seriesuid
    for name in (
        "nodules.csv",
        "report.json",
        "report.html",
        "lung_mask.nii.gz",
        "nodule_labels.nii.gz",
        "gradcam.nii.gz",
        "nodule_probability.nii.gz",
    ):
        assert (folder / name).is_file(), name
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no work folder left behind
    with open(folder / "nodules.csv", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        rows = list(reader)
    assert header[:6] == ["seriesuid", "coordX", "coordY", "coordZ", "probability", "diameter_mm"]
    assert {
        "long_axis_mm",
        "short_axis_mm",
        "volume_mm3",
        "mean_hu",
        "density",
        "lung_rads_size_only",
        "side",
    } <= set(header)
    assert len(rows) == len(run.studies[0].nodules)


def test_nodule_probability_is_the_geometric_mean_of_the_two_bundles(detected, study):
    """Each candidate's probability is the geometric mean of the FP and segmentation bundles'; kept ones pass it."""
    run, out = detected
    ct, _ = study
    folder = out / ct.seriesuid
    with open(folder / "candidates_scored.csv", newline="") as handle:
        scored = list(csv.DictReader(handle))
    assert scored
    p = np.array(
        [[float(r[k]) for k in ("probability", "fp_probability", "seg_probability")] for r in scored]
    )
    np.testing.assert_allclose(p[:, 0], np.sqrt(p[:, 1] * p[:, 2]), rtol=1e-6)
    assert (np.diff(p[:, 0]) <= 0).all()  # most probable first
    threshold = json.loads((folder / "report.json").read_text())["threshold"]
    kept = run.studies[0].nodules
    assert len(kept) == int((p[:, 0] >= threshold).sum())
    assert all(float(n["probability"]) >= threshold for n in kept)


def test_nifti_outputs_lie_on_the_series_grid(detected, study):
    from lungcad_transforms.data.image_reader import load_image

    run, out = detected
    ct, series = study
    image = load_image(str(series))
    source = np.asarray(image.meta["source_affine"])
    for name in ("lung_mask.nii.gz", "nodule_labels.nii.gz", "gradcam.nii.gz", "nodule_probability.nii.gz"):
        nifti = nib.load(out / ct.seriesuid / name)
        assert nifti.shape == tuple(int(s) for s in image.meta["source_shape"])
        np.testing.assert_allclose(nifti.affine, source, atol=1e-4)
    lungs = np.asarray(nib.load(out / ct.seriesuid / "lung_mask.nii.gz").dataobj) > 0
    dice = 2 * (lungs & ct.lungs).sum() / (lungs.sum() + ct.lungs.sum())
    assert dice > 0.9  # the phantom's arrays are in the series' own (ITK) order


def test_probability_map_is_the_segmentations_on_the_series_grid(detected, study):
    """The voxel-wise nodule probability a user thresholds again: in [0, 1], the nodule labels inside it."""
    run, out = detected
    ct, _ = study
    folder = out / ct.seriesuid
    probability = np.asarray(nib.load(folder / "nodule_probability.nii.gz").dataobj, dtype=np.float32)
    labels = np.asarray(nib.load(folder / "nodule_labels.nii.gz").dataobj) > 0
    assert np.isfinite(probability).all()
    assert probability.min() >= 0.0 and probability.max() <= 1.0
    if (
        labels.any()
    ):  # a nodule label is where the segmentation called nodule: higher probability than elsewhere
        assert probability[labels].mean() > probability[~labels].mean()


def test_report_json_has_timings_versions_and_weight_hashes(detected, study, tiny_bundles):
    run, out = detected
    ct, _ = study
    report = json.loads((out / ct.seriesuid / "report.json").read_text())
    assert set(report["timings_s"]) == {
        "load",
        "lung mask",
        "segmentation",
        "fp reduction",
        "grad-cam",
        "measurements",
        "outputs",
    }
    assert report["versions"]["monai"] and report["versions"]["highdicom"] != "not installed"
    for name, path in tiny_bundles.weights.items():
        assert report["weights"][name]["sha256"] == file_sha256(path)
    assert report["n_nodules"] == len(run.studies[0].nodules)


def test_dicom_seg_and_sr_reference_the_study(detected, study):
    run, out = detected
    ct, series = study
    report = json.loads((out / ct.seriesuid / "report.json").read_text())
    segmented = [n for n in report["nodules"] if n["label"] > 0]
    if not segmented:
        pytest.skip("the tiny segmentation network segmented nothing at its mask threshold")
    seg = pydicom.dcmread(out / ct.seriesuid / "nodules_seg.dcm")
    sr = pydicom.dcmread(out / ct.seriesuid / "nodules_sr.dcm")
    source = pydicom.dcmread(next(series.iterdir()), stop_before_pixels=True)
    assert seg.StudyInstanceUID == sr.StudyInstanceUID == source.StudyInstanceUID
    assert len(seg.SegmentSequence) == len(segmented)
    assert report["dicom"]["seg_check"]["segments"] == len(segmented)
    assert report["dicom"]["sr_check"]["seg_sop_instance_uid"] == seg.SOPInstanceUID


def test_report_html_is_self_contained(detected, study):
    _, out = detected
    ct, _ = study
    page = (out / ct.seriesuid / "report.html").read_text()
    assert "<script" not in page and "http://" not in page and "https://" not in page
    assert page.count("data:image/png;base64,") >= 2  # the two renderings at least


def test_report_html_in_headless_chromium(detected, study, tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium is not installed (Debian: apt-get install chromium)")
    _, out = detected
    ct, _ = study
    page = (out / ct.seriesuid / "report.html").read_text()
    # a copy with a check appended: the DOM after load then says how many images decoded
    check = (
        "<script>window.addEventListener('load',()=>{const i=[...document.images];"
        "document.body.setAttribute('data-images',i.length+'/'+i.filter(x=>x.complete&&x.naturalWidth>0).length);});</script>"
    )
    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("</body>", check + "</body>"))
    flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000"]
    dom = subprocess.run(
        [*flags, "--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=120
    ).stdout
    total, loaded = dom.split('data-images="')[1].split('"')[0].split("/")
    assert int(total) >= 2 and loaded == total
    shot = tmp_path / "shot.png"
    subprocess.run([*flags, f"--screenshot={shot}", "--window-size=1280,2000", (out / ct.seriesuid / "report.html").as_uri()],
                   capture_output=True, timeout=120)  # fmt: skip
    import matplotlib.pyplot as plt

    pixels = plt.imread(shot)
    assert pixels.shape[0] > 100 and pixels[..., :3].std() > 0.05


def test_batch_reports_bad_studies_and_finishes_the_good_one(tiny_bundles, study, tmp_path, capsys):
    from lungcad_transforms.apps.phantoms.ct import make_ct_phantom
    from lungcad_transforms.data.dicom_writer import write_dicom_series
    from lungcad_transforms.data.image_writer import write_nifti

    ct, series = study
    folder = tmp_path / "batch"
    shutil.copytree(series, folder / "good")
    mr = make_ct_phantom((48, 48, 24), seed=3)
    write_dicom_series(mr.hu + 1024, mr.spacing, mr.origin_lps, folder / "mr", modality="MR")
    gap = make_ct_phantom((48, 48, 24), seed=6)
    gapped = write_dicom_series(gap.hu, gap.spacing, gap.origin_lps, folder / "gap", modality="CT")
    os.remove(sorted(gapped.iterdir())[10])  # a slice missing in the middle
    scout = write_dicom_series(gap.hu[:, :, :1], gap.spacing, gap.origin_lps, folder / "scout", modality="CT")
    for path in scout.iterdir():
        ds = pydicom.dcmread(path)
        ds.ImageType = ["ORIGINAL", "PRIMARY", "LOCALIZER"]
        ds.save_as(path)
    belly = make_ct_phantom((64, 64, 32), seed=8, lungs=False)
    write_nifti(belly.hu, belly.spacing, belly.origin_lps, folder / "abdomen.nii.gz")
    out = tmp_path / "out"
    bundle_root = tiny_bundles.segmentation.parent
    if tiny_bundles.fp_reduction.parent != bundle_root:
        pytest.skip("the bundles are not in one folder")
    code = main(
        ["detect", str(folder), "--out", str(out), "--threshold", "0", "--no-progress", "--no-render",
         "--bundle-dir", str(bundle_root)]
    )  # fmt: skip
    captured = capsys.readouterr()
    printed = captured.out
    assert code == 0, captured.err[-2000:] + printed[-2000:]
    with open(out / "summary.csv", newline="") as handle:
        summary = {row["seriesuid"]: row for row in csv.DictReader(handle)}
    assert summary[ct.seriesuid]["status"] == "done"
    reasons = " | ".join(row["reason"] for row in summary.values() if row["status"] == "skipped")
    assert "is MR, not CT" in reasons
    assert "missing slices" in reasons
    assert "localiser" in reasons
    assert "no lungs" in reasons or "not a chest CT" in reasons
    assert len(summary) == 5 and printed.count("skipped ") == 4
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [ct.seriesuid, "summary.csv"]
    )  # nothing half-written


def test_nothing_processed_exits_2(tiny_bundles, tmp_path, capsys):
    from lungcad_transforms.apps.phantoms.ct import make_ct_phantom
    from lungcad_transforms.data.image_writer import write_nifti

    belly = make_ct_phantom((64, 64, 32), seed=8, lungs=False)
    write_nifti(belly.hu, belly.spacing, belly.origin_lps, tmp_path / "abdomen.nii.gz")
    bundle_root = tiny_bundles.segmentation.parent
    if tiny_bundles.fp_reduction.parent != bundle_root:
        pytest.skip("the bundles are not in one folder")
    code = main(
        [
            "detect",
            str(tmp_path / "abdomen.nii.gz"),
            "--out",
            str(tmp_path / "out"),
            "--bundle-dir",
            str(bundle_root),
            "--no-progress",
        ]
    )
    assert code == 2 and "no study could be processed" in capsys.readouterr().out


def test_unwritable_output_folder_is_one_clear_message(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    code = main(["detect", str(tmp_path), "--out", str(blocker / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "output folder cannot be written" in err and "Traceback" not in err


def test_demo_writes_a_study_and_runs_the_chain_on_it(tiny_bundles, tmp_path):
    from lungcad_transforms.apps.cad.demo import run_demo

    out = tmp_path / "demo"
    outputs = run_demo(out, bundle_dir=tiny_bundles.segmentation.parent)
    assert outputs["report"].is_file() and outputs["report"].name == "report.html"
    assert len(list((out / "phantom_dicom").glob("*.dcm"))) > 0
    summary = json.loads(outputs["summary"].read_text())
    assert summary["weights"]["segmentation"] == str(tiny_bundles.segmentation)  # reused, not retrained
    assert len(summary["truth"]) > 0 and summary["nodules_found"] >= 0
    assert outputs["nodules"].read_text().startswith("seriesuid,coordX,coordY,coordZ,probability")
