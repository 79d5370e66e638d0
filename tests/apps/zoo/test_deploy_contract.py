"""The inference sections of every bundle, driven as MONAI Deploy's MonaiBundleInferenceOperator drives them.

The operator hands a bundle's preprocessing what the application's upstream operator gives it: for the
segmentation bundle a whole CT volume as DICOMSeriesToVolumeOperator makes it (no channel, the series' index
order); for the patch and slice bundles the network input that network_data_format declares (the application
cuts it). The network is the TorchScript export of random weights (the checkout has no trained ones).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from image_checks import LPS_TO_RAS
from monai.data import MetaTensor

from lungcad_transforms.apps.zoo.checks import check_torchscript, fake_input_shape, network_variants
from lungcad_transforms.apps.zoo.deploy import BundleInferenceHarness, sdk_image_array, sdk_volume

REPO_ROOT = Path(__file__).resolve().parents[3]
BUNDLES = sorted(
    p.name for p in (REPO_ROOT / "bundles").iterdir() if (p / "configs" / "metadata.json").is_file()
)

pytestmark = pytest.mark.usefixtures("single_torch_thread")


def _declared_sample(spec: dict, shape: list[int]) -> MetaTensor:
    low, high = spec["value_range"] if len(spec.get("value_range") or []) == 2 else (0, 1)
    return MetaTensor(low + (high - low) * torch.rand(*shape[1:]), affine=torch.eye(4))


def _ct_series_volume():
    from lungcad_transforms.apps.phantoms.ct import make_ct_phantom

    # X != Y, anisotropic: a transposed or resampled result cannot match the input's shape
    ct = make_ct_phantom((56, 48, 20), spacing=(1.4, 1.5, 2.5), seed=3, nodule_kinds=("solid",))
    array, meta = sdk_volume(ct.hu.astype(np.float32), LPS_TO_RAS @ ct.affine_lps(), Modality="CT")
    return (array, meta), ct


def _harness(bundle: str, tmp_path: Path) -> tuple[BundleInferenceHarness, dict]:
    root = REPO_ROOT / "bundles" / bundle
    inference = json.loads((root / "configs" / "inference.json").read_text())
    assert {"preprocessing", "inferer", "postprocessing"} <= set(inference), (
        f"{bundle}: inference.json sections"
    )
    net_id, files = network_variants(root)[0]
    check_torchscript(root, net_id, files, tmp_path)  # random weights -> tmp_path/models/model.ts
    # outputs of any section that still writes files go to tmp_path, never into the bundle
    harness = BundleInferenceHarness(
        root, model_file=tmp_path / "models" / "model.ts", override={"output_dir": str(tmp_path / "out")}
    )
    return harness, json.loads((root / "configs" / "metadata.json").read_text())


@pytest.mark.parametrize("bundle", [b for b in BUNDLES if b != "lung_nodule_ct_segmentation"])
def test_patch_and_slice_bundles_under_the_operator_contract(bundle: str, tmp_path: Path):
    harness, meta = _harness(bundle, tmp_path)
    shape = fake_input_shape(meta)
    inputs = {
        name: _declared_sample(spec, shape) for name, spec in meta["network_data_format"]["inputs"].items()
    }
    outputs = harness(inputs)
    for name, spec in meta["network_data_format"]["outputs"].items():
        value = outputs[name]
        if spec["type"] == "probabilities":
            assert set(value["result"]) <= set(spec["channel_def"].values())
            probs = np.asarray(value["probabilities"])
            assert probs.shape == (spec["num_channels"],) and np.all((probs >= 0) & (probs <= 1))
            if spec["num_channels"] > 1:  # softmax over the classes, as the docs say
                assert probs.sum() == pytest.approx(1.0, abs=1e-5)
        else:
            value = torch.as_tensor(value)
            assert tuple(value.shape) == (spec["num_channels"], *shape[2:])
            assert str(value.dtype).removeprefix("torch.") == spec["dtype"]
    assert not (tmp_path / "out").exists()  # the sections write no files


def test_segmentation_takes_a_ct_series_volume_and_gives_a_mask_on_it(tmp_path: Path):
    harness, _ = _harness("lung_nodule_ct_segmentation", tmp_path)
    (array, meta), ct = _ct_series_volume()
    given = array.copy()
    mask = torch.as_tensor(harness({"image": (array, meta)})["pred"])
    # the mask lies on the input volume's own grid, voxel for voxel, binary
    assert tuple(mask.shape) == (1, *array.shape)
    assert set(torch.unique(mask).tolist()) <= {0.0, 1.0}
    np.testing.assert_array_equal(array, given)  # the application's volume is not changed
    # the SDK Image the operator emits: (Z, Y, X) uint8, the DICOM series' own frame order
    image = sdk_image_array(mask)
    assert image.dtype == np.uint8 and image.shape == array.shape[::-1]
    # the network sees only the lungs' bounding box (dilated): nothing is marked outside it
    lungs = np.argwhere(ct.lungs)
    margin = (
        np.ceil(harness.parser.get_parsed_content("lung_dilation_mm") / np.asarray(ct.spacing)).astype(int)
        + 1
    )
    low, high = np.maximum(lungs.min(0) - margin, 0), lungs.max(0) + margin + 1
    inside = np.zeros(array.shape, bool)
    inside[low[0] : high[0], low[1] : high[1], low[2] : high[2]] = True
    assert not mask[0].numpy()[~inside].any()
    assert not (tmp_path / "out").exists()  # the deploy postprocessing writes no files
    # the operator passes every tensor the preprocessing leaves beside the image on to the network: without
    # the step that drops the lung mask, the TorchScript forward refuses the extra argument
    harness.preprocessing.transforms = tuple(
        t for t in harness.preprocessing.transforms if type(t).__name__ != "DeleteItemsd"
    )
    with pytest.raises(RuntimeError, match="forward.. expected at most 2 argument"):
        harness({"image": (array, meta)})
