"""The MONAI Model Zoo's acceptance checks, offline, for EVERY bundle under bundles/ (new ones included).

A bundle folder without configs/metadata.json yet (one being built) is left out; every other is held to:
the zoo's files, version in changelog, metadata valid against the shipped schema, verify_net_in_out for
each network its configs can select, ckpt_export to TorchScript with a forward equal to the eager one.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from lungcad_transforms.apps.zoo.checks import (
    SCHEMA_FILE,
    check_files,
    check_metadata,
    check_network,
    check_torchscript,
    check_version,
    network_variants,
)
from lungcad_transforms.errors import InputError

REPO_ROOT = Path(__file__).resolve().parents[2]
BUNDLES = sorted(
    p.name for p in (REPO_ROOT / "bundles").iterdir() if (p / "configs" / "metadata.json").is_file()
)
VARIANTS = [
    pytest.param(name, net_id, files, id=f"{name}-{Path(files[-1]).stem}")
    for name in BUNDLES
    for net_id, files in network_variants(REPO_ROOT / "bundles" / name)
]

# bundles whose docs report measured results: their metadata must carry them
MEASURED = {"lung_nodule_ct_segmentation", "lung_nodule_ct_fp_reduction"}

pytestmark = pytest.mark.usefixtures("single_torch_thread")


def test_every_bundle_folder_is_checked():
    folders = [p for p in (REPO_ROOT / "bundles").iterdir() if p.is_dir()]
    assert {"lung_nodule_ct_segmentation", "lung_nodule_ct_fp_reduction", "lung_nodule_ct_gan"} <= set(
        BUNDLES
    )
    # a folder is skipped only while it has no metadata.json
    assert {p.name for p in folders if (p / "configs" / "metadata.json").is_file()} == set(BUNDLES)


@pytest.mark.parametrize("bundle", BUNDLES)
def test_files_version_and_metadata_schema(bundle: str, tmp_path: Path):
    root = REPO_ROOT / "bundles" / bundle
    check_files(root)
    version = check_version(root)
    check_metadata(root, tmp_path)
    meta = json.loads((root / "configs" / "metadata.json").read_text())
    assert meta["version"] == version
    # the figures of docs/README.md "Results", not the template's zeros (null: not measured yet, allowed
    # only for bundles that have not published results)
    metrics = meta.get("eval_metrics", {})
    assert all(v is None or v > 0 for v in metrics.values())
    if bundle in MEASURED:
        assert metrics and all(v is not None and v > 0 for v in metrics.values())
    for part in ("inputs", "outputs"):
        for spec in meta["network_data_format"][part].values():
            assert {"type", "format", "num_channels", "spatial_shape", "dtype", "channel_def"} <= set(spec)


@pytest.mark.parametrize("bundle, net_id, files", VARIANTS)
def test_network_shapes_and_torchscript_export(bundle: str, net_id: str, files: list[str], tmp_path: Path):
    root = REPO_ROOT / "bundles" / bundle
    check_network(root, net_id, files)  # raises when the output differs from network_data_format
    diff = check_torchscript(root, net_id, files, tmp_path)
    assert (tmp_path / "models" / "model.ts").is_file()
    assert diff <= 1e-5, f"{bundle} {Path(files[-1]).name}: TorchScript differs from eager by {diff}"


def test_fp_bundle_variants_include_both_networks():
    names = [
        Path(files[-1]).name
        for _, files in network_variants(REPO_ROOT / "bundles/lung_nodule_ct_fp_reduction")
    ]
    assert names == ["inference.json", "small3dcnn.json"]  # the MGI-CNN and the small 3D CNN
    # pretrain.json is a workflow of its own (a SimCLR head), not a network inference can select
    names = [Path(f[-1]).name for _, f in network_variants(REPO_ROOT / "bundles/lung_nodule_ct_segmentation")]
    assert names == ["inference.json"]


def _copy_bundle(tmp_path: Path) -> Path:
    src = REPO_ROOT / "bundles" / "lung_nodule_ct_fp_reduction"
    dst = tmp_path / "bundle"
    for name in ("configs", "docs"):
        shutil.copytree(src / name, dst / name)
    shutil.copy2(src / "LICENSE", dst / "LICENSE")
    return dst


def test_checks_fail_on_a_broken_bundle(tmp_path: Path):
    bundle = _copy_bundle(tmp_path)
    meta_file = bundle / "configs" / "metadata.json"
    meta = json.loads(meta_file.read_text())

    (bundle / "LICENSE").unlink()
    with pytest.raises(InputError, match="LICENSE"):
        check_files(bundle)
    shutil.copy2(REPO_ROOT / "bundles" / "lung_nodule_ct_fp_reduction" / "LICENSE", bundle / "LICENSE")
    check_files(bundle)
    with pytest.raises(InputError, match="model.pt"):  # the zoo's preferred weights, once trained
        check_files(bundle, weights=True)
    (bundle / "large_files.yml").write_text(
        'large_files:\n  - path: "models/model.pt"\n    url: ""\n    hash_val: "ab"\n    hash_type: "sha256"\n'
    )
    with pytest.raises(InputError, match="neither in the bundle nor has a url"):
        check_files(bundle)
    (bundle / "large_files.yml").unlink()

    meta_file.write_text(json.dumps({**meta, "version": "0.2.0"}))
    with pytest.raises(InputError, match="0.2.0"):
        check_version(bundle)

    for broken in (
        {k: v for k, v in meta.items() if k != "authors"},  # a required field missing
        {**meta, "version": "one"},  # not a version number
        {**meta, "network_data_format": {"inputs": {"image": {"type": "image"}}, "outputs": {}}},
    ):
        meta_file.write_text(json.dumps(broken))
        with pytest.raises(ValueError):
            check_metadata(bundle, tmp_path / "schema")

    # a network whose output does not match network_data_format
    wrong = json.loads(json.dumps(meta))
    wrong["network_data_format"]["outputs"]["pred"]["num_channels"] = 2
    meta_file.write_text(json.dumps(wrong))
    small = [str(bundle / "configs" / n) for n in ("train.json", "inference.json", "small3dcnn.json")]
    with pytest.raises(ValueError):
        check_network(bundle, "network_def", small)


def test_shipped_schema_is_valid_json_schema():
    import jsonschema

    schema = json.loads(SCHEMA_FILE.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    assert {"version", "changelog", "network_data_format", "required_packages_version"} <= set(
        schema["required"]
    )
