"""The CT-GAN bundle end to end (tiny runs): training, evaluation, inference, the edits, the CLI, bad input."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from lungcad_transforms.apps.ctgan.cube_dataset import ctgan_cube_items, ensure_ctgan_dataset
from lungcad_transforms.data.tables import read_annotations
from lungcad_transforms.errors import InputError

REPO = Path(__file__).resolve().parents[2]
BUNDLE = REPO / "bundles" / "lung_nodule_ct_gan"
CONFIGS = BUNDLE / "configs"
TINY_DATA = dict(n_train=2, n_val=1, shape=(80, 80, 56), spacing=(1.2, 1.2, 1.5), seed=11, remover_per_scan=4)
TINY_DATASET = (ensure_ctgan_dataset, "ctgan", "phantoms")  # built by conftest.tiny_dataset
TINY_NET = [
    "--generator_channels",
    "[4,8,16]",
    "--generator_strides",
    "[2,2]",
    "--discriminator_channels",
    "4",
]


def _ok(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


@pytest.fixture(scope="module")
def trained_bundle(tiny_dataset, tmp_path_factory, bundle_cli) -> Path:
    """Injector and remover, one tiny epoch each through `monai.bundle run training`.

    The remover's run is tracked with MONAI's built-in ``--tracking mlflow`` into ``mlruns.db`` beside it;
    the real-CT lung cubes are left out (their lung masks take minutes; tests/apps/ctgan covers them).
    """
    root = tmp_path_factory.mktemp("ctgan_bundle")
    for task in ("injector", "remover"):
        tracking = (["--tracking", "mlflow", "--tracking_uri", _tracking_uri(root), "--use_real_lung", "$False"]
                    if task == "remover" else [])  # fmt: skip
        _ok(bundle_cli("training", ["train.json"], "--dataset_dir", str(tiny_dataset), "--bundle_root", str(root),
                       "--task", task, "--epochs", "1", "--batch_size", "4", *TINY_NET, *tracking))  # fmt: skip
    return root


def _tracking_uri(root: Path) -> str:
    return f"sqlite:///{root / 'tracking' / 'mlruns.db'}"


@pytest.fixture(scope="module")
def scan(tiny_dataset) -> tuple[Path, list[float]]:
    """A validation phantom and the LPS centre of one of its nodules."""
    from lungcad_transforms.apps.ctgan.cubes import cut_cube
    from lungcad_transforms.data.image_reader import load_image

    for entry in json.loads((tiny_dataset / "datalist.json").read_text())["training"]:
        ct = load_image(tiny_dataset / entry["image"])
        for a in read_annotations(tiny_dataset / "annotations.csv"):
            at = [a["coordX"], a["coordY"], a["coordZ"]]
            try:
                if a["seriesuid"] == entry["seriesuid"]:
                    cut_cube(ct.numpy()[0], ct.affine.numpy(), at)
                    return tiny_dataset / entry["image"], at
            except InputError:
                continue
    pytest.fail("no phantom nodule whose cube fits its scan")


# ------------------------------------------------------------------------------------------------ data
def test_embedded_cubes_pair_inputs_with_real_cubes(tiny_dataset):
    inj = ctgan_cube_items(tiny_dataset, "injector")
    rem = ctgan_cube_items(tiny_dataset, "remover")
    assert inj and len(rem) >= 4
    item = inj[0]
    assert item["image"].shape == (3, 32, 32, 32) and item["label"].shape == (1, 32, 32, 32)
    mask = item["image"][1]
    assert mask.sum() == 16**3 and np.all(item["image"][0][mask == 1] == 0)
    assert np.array_equal(item["image"][0][mask == 0], item["label"][0][mask == 0])
    assert item["image"][2].sum() > 0 and rem[0]["image"][2].sum() == 0  # the target sphere: injector only
    # a nodule-centred cube is denser at its centre than a lung cube
    assert item["label"][0, 14:18, 14:18, 14:18].mean() > rem[0]["label"][0, 14:18, 14:18, 14:18].mean()
    with pytest.raises(InputError, match="task"):
        ctgan_cube_items(tiny_dataset, "painter")


def test_generator_matches_the_declared_network_data_format():
    from lungcad_transforms.networks.nets.ctgan import CTGANGenerator

    fmt = json.loads((CONFIGS / "metadata.json").read_text())["network_data_format"]
    shape_in = fmt["inputs"]["image"]["spatial_shape"]
    net = CTGANGenerator(channels=(4, 8, 16), strides=(2, 2)).eval()
    x = torch.rand(1, fmt["inputs"]["image"]["num_channels"], *shape_in) * 2 - 1
    x[:, 1] = 0
    x[:, 1, 8:24, 8:24, 8:24] = 1
    with torch.no_grad():
        y = net(x)
    assert list(y.shape[1:]) == [
        fmt["outputs"]["pred"]["num_channels"],
        *fmt["outputs"]["pred"]["spatial_shape"],
    ]
    outside = x[:, 1:2] == 0
    assert torch.equal(y[outside], x[:, :1][outside]) and float(y.abs().max()) <= 1.0


# ------------------------------------------------------------------------------------------- workflows
def test_training_writes_both_generators_loadable_with_weights_only(trained_bundle):
    for task in ("injector", "remover"):
        state = torch.load(trained_bundle / "models" / f"{task}.pt", map_location="cpu", weights_only=True)
        assert {"generator", "discriminator"} <= set(state)
        settings = json.loads((trained_bundle / "models" / f"{task}_network.json").read_text())
        assert settings["generator_channels"] == [4, 8, 16]


def test_tracked_training_records_params_losses_and_the_generator_in_mlflow(trained_bundle, tiny_dataset):
    import mlflow

    n_cubes = len(ctgan_cube_items(tiny_dataset, "remover"))

    client = mlflow.MlflowClient(tracking_uri=_tracking_uri(trained_bundle))
    (run,) = client.search_runs([client.get_experiment_by_name("lung_nodule_ct_gan").experiment_id])
    assert run.info.status == "FINISHED"
    params = run.data.params
    assert params["task"] == "remover" and params["max_epochs"] == "1" and float(params["learning_rate"]) > 0
    history = client.get_metric_history(
        run.info.run_id, "train_loss"
    )  # MONAI's handler reads the step's `loss`
    assert len(history) == -(-n_cubes // 4) and all(np.isfinite(m.value) and m.value > 0 for m in history)
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert "remover.pt" in artifacts and any(
        a.endswith(".json") for a in artifacts
    )  # weights + executed config


def test_evaluation_writes_mae_and_ssim(trained_bundle, tiny_dataset, bundle_cli):
    _ok(bundle_cli(None, ["train.json", "evaluate.json"], "--dataset_dir", str(tiny_dataset), "--bundle_root",
                   str(trained_bundle), "--task", "remover", *TINY_NET))  # fmt: skip
    metrics = dict(csv.reader(open(trained_bundle / "eval" / "remover" / "metrics.csv")))
    assert 0 <= float(metrics["val_mae"]) <= 2 and -1 <= float(metrics["val_ssim"]) <= 1


def test_inference_removes_the_annotated_nodules_of_the_validation_scans(
    trained_bundle, tiny_dataset, bundle_cli
):
    out = trained_bundle / "eval" / "inference"
    _ok(bundle_cli(None, ["train.json", "inference.json"], "--bundle_root", str(trained_bundle),
                   "--embedded_data_dir", str(tiny_dataset), "--output_dir", str(out)))  # fmt: skip
    rows = list(csv.DictReader(open(out / "edits.csv")))
    uid = json.loads((tiny_dataset / "datalist.json").read_text())["validation"][0]["seriesuid"]
    expected = [a for a in read_annotations(tiny_dataset / "annotations.csv") if a["seriesuid"] == uid]
    # a nodule whose cube would cross the scan border is refused and skipped, the others are removed
    assert 0 < len(rows) <= len(expected) and {r["edit"] for r in rows} == {"remove"}
    assert all(Path(r["output"]).is_file() for r in rows)


# ------------------------------------------------------------------------------------------------ edits
def test_inject_and_remove_change_only_the_cube(trained_bundle, scan, single_torch_thread):
    from lungcad_transforms.apps.ctgan.editor import NoduleEditor
    from lungcad_transforms.data.coords import world_to_voxel
    from lungcad_transforms.data.image_reader import load_image

    path, at = scan
    ct = load_image(path)
    editor = NoduleEditor(trained_bundle)
    for edited in (editor.inject(ct, at, diameter_mm=6.0), editor.remove(ct, at)):
        assert edited.shape == ct.shape and torch.equal(edited.affine, ct.affine)
        changed = np.argwhere((edited != ct).numpy()[0])
        assert len(changed) > 0
        # every changed voxel lies inside the 16 mm in-paint box around the location
        centre = world_to_voxel(at, ct.affine.numpy())[0]
        spacing = np.abs(np.diag(ct.affine.numpy())[:3])
        assert np.all(np.abs(changed - centre) * spacing <= 8.0 + spacing)


def test_cli_writes_nifti_and_metaimage_on_the_input_grid_and_logs_edits(
    trained_bundle, scan, tmp_path, bundle_cli
):
    import itk
    import nibabel as nib

    path, at = scan
    at_args = ["--at", *map(str, at)]
    cli = [sys.executable, "-m", "lungcad_transforms.cli", "ctgan"]
    _ok(bundle_cli.run([*cli, "inject", str(path), str(tmp_path / "inj.nii.gz"), *at_args, "--diameter", "6", "--bundle-dir", str(trained_bundle)]))  # fmt: skip
    _ok(
        bundle_cli.run(
            [
                *cli,
                "remove",
                str(path),
                str(tmp_path / "rem.mha"),
                *at_args,
                "--bundle-dir",
                str(trained_bundle),
            ]
        )
    )
    src, inj = nib.load(path), nib.load(tmp_path / "inj.nii.gz")
    assert inj.shape == src.shape and np.allclose(inj.affine, src.affine) and inj.get_data_dtype() == np.int16
    diff = inj.get_fdata() != src.get_fdata()
    assert 0 < diff.sum() <= 20**3
    mha = itk.imread(str(tmp_path / "rem.mha"))
    assert itk.array_from_image(mha).shape == src.shape[::-1]
    rows = list(csv.DictReader(open(tmp_path / "edits.csv")))
    assert [r["edit"] for r in rows] == ["inject", "remove"]
    assert np.allclose([float(rows[0][k]) for k in ("coordX", "coordY", "coordZ")], at)


def test_bad_input_is_refused_with_a_clear_error(trained_bundle, scan, tmp_path):
    from lungcad_transforms.apps.ctgan.editor import NoduleEditor
    from lungcad_transforms.data.coords import voxel_to_world
    from lungcad_transforms.data.image_reader import load_image
    from lungcad_transforms.data.image_writer import write_nifti

    path, at = scan
    ct = load_image(path)
    editor = NoduleEditor(trained_bundle)
    affine = ct.affine.numpy()
    with pytest.raises(InputError, match="outside the scan"):
        editor.inject(ct, [at[0] + 500, at[1], at[2]], 6.0)
    edge = voxel_to_world([2, 40, 28], affine)[0]
    with pytest.raises(InputError, match="crosses the scan border"):
        editor.inject(ct, edge, 6.0)
    hu, lungs = ct.numpy()[0], editor.lung_mask(ct)
    body = np.argwhere((hu > -200) & ~lungs)
    body = body[np.all((body >= 16) & (body < np.array(hu.shape) - 16), axis=1)]
    with pytest.raises(InputError, match="outside the lungs"):
        editor.inject(ct, voxel_to_world(body[len(body) // 2], affine)[0], 6.0)
    with pytest.raises(InputError, match="diameter"):
        editor.inject(ct, at, 30.0)
    mr = tmp_path / "mr.nii.gz"
    write_nifti(np.full((64, 64, 48), 300, np.int16), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), mr)
    with pytest.raises(InputError):
        editor.inject(load_image(mr), [-32.0, -32.0, 24.0], 6.0)
    with pytest.raises(InputError, match="no trained injector weights"):
        NoduleEditor(tmp_path / "empty").inject(ct, at, 6.0)


# --------------------------------------------------------------------------------------------- DICOM
def test_a_real_dicom_slab_thinner_than_the_cube_is_refused(trained_bundle, lidc_0003):
    from lungcad_transforms.apps.ctgan.editor import NoduleEditor
    from lungcad_transforms.data.coords import voxel_to_world
    from lungcad_transforms.data.image_reader import load_image

    ct = load_image(lidc_0003)  # 11 slices of 2.5 mm: no 32 mm cube fits
    centre = voxel_to_world([s / 2 for s in ct.shape[1:]], ct.affine.numpy())[0]
    with pytest.raises(InputError, match="crosses the scan border"):
        NoduleEditor(trained_bundle).inject(ct, centre, 6.0)


@pytest.mark.slow
def test_injection_into_a_dicom_series_writes_a_derived_series(trained_bundle, scan, tmp_path):
    import pydicom

    from lungcad_transforms.apps.ctgan.edit_files import edit_file
    from lungcad_transforms.data.dicom_writer import write_dicom_series
    from lungcad_transforms.data.image_reader import load_image

    path, at = scan
    import nibabel as nib

    from lungcad_transforms.data.coords import ras_to_lps_affine

    nii = nib.load(path)
    lps = ras_to_lps_affine(nii.affine)
    source = tmp_path / "series"
    write_dicom_series(np.asarray(nii.dataobj), np.abs(np.diag(lps)[:3]), lps[:3, 3], source)
    ct = load_image(source)
    hu = ct.numpy()[0]
    out = tmp_path / "derived"
    edit_file(source, out, "inject", at, 6.0, bundle_dir=trained_bundle)
    before = {pydicom.dcmread(f).InstanceNumber: pydicom.dcmread(f) for f in source.iterdir()}
    after = {pydicom.dcmread(f).InstanceNumber: pydicom.dcmread(f) for f in out.iterdir()}
    assert before.keys() == after.keys()
    derived_tags = {"ImageType", "SeriesInstanceUID", "SOPInstanceUID", "DerivationDescription", "PixelData"}
    series_uids = set()
    for k, a in after.items():
        b = before[k]
        assert a.ImageType[0] == "DERIVED" and "inject" in a.DerivationDescription
        assert a.SOPInstanceUID != b.SOPInstanceUID
        assert a.file_meta.MediaStorageSOPInstanceUID == a.SOPInstanceUID
        series_uids.add(a.SeriesInstanceUID)
        for elem in b:
            if elem.keyword not in derived_tags:
                assert a[elem.tag].value == elem.value, elem.keyword
    assert len(series_uids) == 1 and series_uids != {next(iter(before.values())).SeriesInstanceUID}
    # ITK reads the derived series back with the same geometry; only the cube changed
    edited = load_image(out)
    assert edited.shape == ct.shape and np.allclose(edited.affine, ct.affine)
    changed = np.argwhere(edited.numpy()[0] != hu)
    spacing = np.abs(np.diag(ct.affine.numpy())[:3])
    assert len(changed) > 0 and np.all(np.ptp(changed, axis=0) * spacing <= 16.0 + 2 * spacing)


# ---------------------------------------------------------------------------------------- distributed
@pytest.mark.slow
def test_two_process_training(tiny_dataset, tmp_path, bundle_cli):
    files = bundle_cli.config_arg(["train.json", "multi_gpu_train.json"])
    result = bundle_cli.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29631",
         "-m", "monai.bundle", "run", "--config_file", files, "--dataset_dir", str(tiny_dataset),
         "--bundle_root", str(tmp_path), "--epochs", "1", "--batch_size", "2", *TINY_NET],
        timeout=300,
    )  # fmt: skip
    _ok(result)
    state = torch.load(tmp_path / "models" / "injector.pt", map_location="cpu", weights_only=True)
    assert not any(k.startswith("module.") for k in state["generator"])


# ------------------------------------------------------------------------------------------ augmentation
def test_rand_inject_nodule_adds_a_gan_positive_in_the_lungs(trained_bundle, scan, single_torch_thread):
    from lungcad_transforms.apps.ctgan import RandInjectNoduled
    from lungcad_transforms.apps.ctgan.editor import NoduleEditor
    from lungcad_transforms.data.coords import world_to_voxel
    from lungcad_transforms.data.image_reader import load_image

    ct = load_image(scan[0])
    editor = NoduleEditor(trained_bundle)
    t = RandInjectNoduled("image", editor, prob=1.0, diameter_mm=(5.0, 7.0)).set_random_state(3)
    out = t({"image": ct})
    (row,) = out["injected_nodules"]
    assert row["class"] == 1 and 5.0 <= row["diameter_mm"] <= 7.0
    v = np.floor(
        world_to_voxel([row["coordX"], row["coordY"], row["coordZ"]], ct.affine.numpy())[0] + 0.5
    ).astype(int)
    assert editor.lung_mask(ct)[tuple(v)] and not torch.equal(out["image"], ct)
    # the same seed draws the same location; prob 0 leaves the data alone
    again = RandInjectNoduled("image", editor, prob=1.0, diameter_mm=(5.0, 7.0)).set_random_state(3)(
        {"image": ct}
    )
    assert again["injected_nodules"] == out["injected_nodules"]
    assert RandInjectNoduled("image", editor, prob=0.0)({"image": ct})["image"] is ct
