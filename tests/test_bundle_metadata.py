"""What the MONAI Model Zoo checks of a bundle before it accepts it: metadata fields and network shapes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from monai.bundle import verify_net_in_out

REPO_ROOT = Path(__file__).resolve().parents[1]
BUNDLES = ("lung_nodule_ct_segmentation", "lung_nodule_ct_fp_reduction")

# the fields the Model Zoo's metadata schema (meta_schema_20240725.json) requires; the schema itself is
# not fetched here (no internet at test time)
REQUIRED_FIELDS = (
    "schema", "version", "changelog", "monai_version", "pytorch_version", "numpy_version",
    "required_packages_version", "name", "task", "description", "authors", "copyright",
    "data_source", "data_type", "intended_use", "references", "network_data_format",
)  # fmt: skip


@pytest.mark.parametrize("bundle", BUNDLES)
def test_metadata_has_model_zoo_fields_and_measured_metrics(bundle: str):
    meta = json.loads((REPO_ROOT / "bundles" / bundle / "configs" / "metadata.json").read_text())
    missing = [f for f in REQUIRED_FIELDS if f not in meta]
    assert not missing, f"{bundle}: metadata lacks {missing}"
    assert meta["version"] in meta["changelog"]
    fmt = meta["network_data_format"]
    for part in ("inputs", "outputs"):
        for spec in fmt[part].values():
            assert {"type", "format", "num_channels", "spatial_shape", "dtype", "channel_def"} <= set(spec)
    # the figures of docs/README.md "Results", not the template's zeros
    assert meta["eval_metrics"] and all(v > 0 for v in meta["eval_metrics"].values())


@pytest.mark.parametrize(
    "bundle, overlays",
    [
        ("lung_nodule_ct_segmentation", []),
        ("lung_nodule_ct_fp_reduction", []),  # the MGI-CNN
        ("lung_nodule_ct_fp_reduction", ["small3dcnn.json"]),
    ],
)
def test_network_matches_declared_input_and_output(bundle: str, overlays: list[str]):
    configs = REPO_ROOT / "bundles" / bundle / "configs"
    # raises when the network's output shape or dtype differs from metadata.json's network_data_format
    verify_net_in_out(
        net_id="network_def",
        meta_file=str(configs / "metadata.json"),
        config_file=[str(configs / name) for name in ("train.json", "inference.json", *overlays)],
        device="cpu",
    )
