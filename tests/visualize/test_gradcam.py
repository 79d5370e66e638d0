"""3-D Grad-CAM mechanics: MONAI and captum agree, the map lands in the right place of the scan, files."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tiny_nets import BlobNet, settle_batch_norm

from lungcad_transforms.networks.nets.mgicnn import MGICNN
from lungcad_transforms.networks.nets.small3dcnn import Small3DCNN
from lungcad_transforms.visualize.gradcam import (
    CandidateGradCAM,
    captum_gradcam,
    default_target_layer,
    heatmap_to_scan,
    normalize_heatmaps,
    peak_inside_nodule,
)

pytestmark = pytest.mark.usefixtures("single_torch_thread")


@pytest.fixture(scope="module")
def trained_tiny(nodule_blob_patches):
    """Both networks, tiny, trained a few dozen steps to tell blobs from lung."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
    nets = [
        MGICNN(patch_size=(12, 12, 12), features=(4, 6, 8, 8, 8), fc_features=(16, 8), dropout=0.0),
        Small3DCNN(
            patch_size=(12, 12, 12), input_scale=0, channels=(4, 8, 8), fc_features=(16, 8), dropout=0.0
        ),
    ]
    x, labels = nodule_blob_patches(24, seed=0, jitter=True)
    for net in nets:
        opt = torch.optim.Adam(net.parameters(), lr=3e-3)
        for _ in range(25):
            opt.zero_grad()
            torch.nn.functional.binary_cross_entropy_with_logits(net(x), labels).backward()
            opt.step()
        settle_batch_norm(net, x)
    return nets


@pytest.mark.parametrize("index", [0, 1])
def test_monai_gradcam_matches_captum(index, trained_tiny, nodule_blob_patches):
    net = trained_tiny[index]
    patches, _ = nodule_blob_patches(4, seed=5, jitter=True)
    patches = patches[1::2]  # the nodules
    monai_maps = CandidateGradCAM(net)(patches)
    captum_maps = captum_gradcam(net, patches)
    assert monai_maps.shape == captum_maps.shape == (2, 1, 12, 12, 12)
    torch.testing.assert_close(monai_maps, captum_maps, atol=1e-5, rtol=1e-4)
    assert float(monai_maps.min()) >= 0.0 and float(monai_maps.max()) == pytest.approx(1.0)
    assert default_target_layer(net) in ("final_block", "conv3")


def test_gradcam_follows_the_evidence_in_the_patch(nodule_blob_patches):
    patches, labels = nodule_blob_patches(16, seed=3, jitter=True)  # nodules up to a voxel off-centre
    nodules = patches[labels[:, 0] == 1]
    maps = CandidateGradCAM(BlobNet(), target_layer="conv3")(nodules)[:, 0]
    blob = nodules[:, 0] > 0.5
    for i in range(len(maps)):
        assert blob[i].flatten()[int(maps[i].argmax())], f"patch {i}: peak outside the nodule"


def test_normalize_heatmaps_keeps_the_maximum_on_top():
    maps = normalize_heatmaps(torch.tensor([[[[1.0, 3.0], [2.0, 5.0]]], [[[0.0, 0.0], [0.0, 0.0]]]]))
    assert float(maps[0].max()) == 1.0 and float(maps[0, 0, 0, 0]) == 0.0
    assert float(maps[1].abs().sum()) == 0.0  # a flat map stays zero, no division by zero


def test_heatmap_lands_at_the_same_world_position_in_the_scan():
    scan_affine = np.array([[0.7, 0, 0, -100.0], [0, 0.7, 0, -80.0], [0, 0, 2.0, -50.0], [0, 0, 0, 1]])
    patch_affine = np.diag([1.25, 1.25, 1.25, 1.0])
    patch_affine[:3, 3] = [-90.0, -70.0, -30.0]
    heat = np.zeros((16, 16, 16), np.float32)
    heat[11, 4, 9] = 1.0
    values, box = heatmap_to_scan(heat, patch_affine, scan_affine, (128, 128, 40))
    volume = np.zeros((128, 128, 40), np.float32)
    volume[box] = values
    peak_scan = np.unravel_index(int(volume.argmax()), volume.shape)
    world_peak = scan_affine @ np.array([*peak_scan, 1.0])
    world_truth = patch_affine @ np.array([11, 4, 9, 1.0])
    # within one scan voxel of where the patch put it
    assert np.all(np.abs(world_peak[:3] - world_truth[:3]) <= np.array([0.7, 0.7, 2.0]))
    # a patch entirely outside the scan gives nothing to paste
    patch_affine[:3, 3] = [500.0, 500.0, 500.0]
    values, box = heatmap_to_scan(heat, patch_affine, scan_affine, (128, 128, 40))
    assert values.size == 0


def test_peak_inside_nodule_uses_the_luna16_hit_rule():
    nodule = {"seriesuid": "1.2.3", "coordX": 0.0, "coordY": 0.0, "coordZ": 0.0, "diameter_mm": 10.0}
    assert peak_inside_nodule((4.9, 0.0, 0.0), "1.2.3", [nodule])
    assert not peak_inside_nodule((5.0, 0.0, 0.0), "1.2.3", [nodule])
    assert not peak_inside_nodule((0.0, 0.0, 0.0), "4.5.6", [nodule])


def test_mgicnn_heatmap_of_a_centred_nodule_is_centred_and_symmetric():
    # with positive constant weights the network is a symmetric blur, so a nodule at the patch centre must give
    # a heatmap symmetric about the centre; that holds only if every pooling keeps its cells where MONAI's
    # upsampler assumes them (2x2x2 windows; 3-wide padded windows shift the map by 1.5 voxels)
    net = MGICNN(patch_size=(20, 20, 12), features=(2, 2, 2, 2, 2), fc_features=(4, 4), dropout=0.0)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, (torch.nn.Conv3d, torch.nn.Linear)):
                module.weight.fill_(0.01)
                module.bias.zero_()
    net.eval()
    grid = torch.stack(
        torch.meshgrid(*[torch.arange(s, dtype=torch.float32) for s in (20, 20, 12)], indexing="ij")
    )
    centre = torch.tensor([9.5, 9.5, 5.5])[:, None, None, None]
    blob = torch.exp(-((grid - centre) ** 2).sum(0) / (2 * 2.0**2))
    heat = CandidateGradCAM(net)(blob.expand(1, 3, 20, 20, 12).contiguous())[0, 0]
    for axis in range(3):
        torch.testing.assert_close(heat, heat.flip(axis), atol=1e-4, rtol=1e-3)
    peak = np.unravel_index(int(heat.argmax()), heat.shape)
    assert peak[0] in (9, 10) and peak[1] in (9, 10) and peak[2] in (5, 6)
