"""CAM / Grad-CAM of 2-D slice classifiers: shapes, exactness, captum agreement, peaks, overlay PNG."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lungcad_transforms.networks.nets.cam_classifier import build_cam_classifier
from lungcad_transforms.visualize.slice_cam import (
    captum_slice_gradcam,
    heatmap_peak,
    save_petct_cam_png,
    slice_cams,
)

TINY = {"ressenet": {"channels": (4, 8, 8), "blocks": (1, 1)}, "resnet18": {"block_inplanes": [4, 8, 8, 8]}}


@pytest.mark.parametrize("backbone", sorted(TINY))
def test_monai_gradcam_matches_captum_and_maps_are_normalised(backbone, single_torch_thread):
    torch.manual_seed(0)
    net = build_cam_classifier(backbone, in_channels=3, **TINY[backbone])
    x = torch.rand(3, 3, 32, 32)
    cam = slice_cams(net, x, backbone, "cam")
    grad = slice_cams(net, x, backbone, "gradcam")
    assert cam.shape == grad.shape == (3, 1, 32, 32)
    assert float(cam.min()) >= 0.0 and float(cam.max()) <= 1.0 + 1e-6
    reference = captum_slice_gradcam(net, x, backbone)
    assert torch.allclose(grad, reference, atol=1e-4)
    assert all(p.grad is None for p in net.parameters())  # explaining leaves no gradients behind
    with pytest.raises(ValueError, match="method"):
        slice_cams(net, x, backbone, "lime")


def test_cam_of_the_res_se_net_points_at_the_feature_that_drives_the_class(single_torch_thread):
    # a network whose cancer logit is the mean of the last block's activation: CAM is that activation map
    net = build_cam_classifier("ressenet", in_channels=3, **TINY["ressenet"]).eval()
    with torch.no_grad():
        net.fc.weight.zero_()
        net.fc.bias.zero_()
        net.fc.weight[1] = 1.0
    x = torch.zeros(1, 3, 32, 32)
    x[:, :, 20:26, 6:12] = 1.0  # one bright square
    cam = slice_cams(net, x, "ressenet", "cam")
    expected = torch.zeros_like(cam)
    for dims in ((), (-1,), (-2,), (-2, -1)):  # the map of each mirror image, flipped back, then their mean
        maps = net.features(torch.flip(x, dims)).sum(1, keepdim=True)
        up = torch.nn.functional.interpolate(maps, size=(32, 32), mode="bilinear", align_corners=False)
        expected += torch.flip((up - up.min()) / (up.max() - up.min()), dims)
    expected = (expected - expected.min()) / (expected.max() - expected.min())
    assert torch.allclose(cam, expected, atol=1e-5)
    peak = np.unravel_index(int(cam.argmax()), (32, 32))
    assert 20 <= peak[0] < 26 and 6 <= peak[1] < 12  # on the square


def test_peak_and_overlay(tmp_path):
    heat = np.zeros((16, 16), np.float32)
    assert heatmap_peak(heat) is None
    heat[3, 11] = 0.7
    assert heatmap_peak(heat) == (3, 11)
    lesion = np.zeros((16, 16), np.uint8)
    lesion[2:5, 10:13] = 1
    png = save_petct_cam_png(tmp_path / "o.png", np.random.rand(16, 16), np.random.rand(16, 16),
                             {"CAM": heat, "Grad-CAM": heat}, lesion, title="t", pixdim=(3.6, 3.6))  # fmt: skip
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 2000


class _TwoFeatureClassifier(torch.nn.Module):
    """features = the two input channels; GAP + linear head, named as the Res-SE Net's (features, fc)."""

    def __init__(self, weights):
        super().__init__()
        self.features = torch.nn.Conv2d(2, 2, 1, bias=False)
        self.fc = torch.nn.Linear(2, 2)
        with torch.no_grad():
            self.features.weight.copy_(torch.eye(2)[..., None, None])
            self.fc.weight.copy_(torch.tensor(weights))
            self.fc.bias.zero_()

    def forward(self, x):
        return self.fc(self.features(x).mean(dim=(2, 3)))


@pytest.mark.parametrize("method", ["cam", "gradcam"])
def test_maps_explain_the_class_against_the_other_not_what_both_share(method):
    # channel 0: bright uptake that both classes weigh alike (heart, say); channel 1: the lesion, cancer only
    net = _TwoFeatureClassifier([[2.0, 0.0], [2.0, 1.0]]).eval()
    x = torch.zeros(1, 2, 32, 32)
    x[:, 0, 4:10, 4:10] = 3.0
    x[:, 1, 22:26, 22:26] = 1.0
    assert net.fc.weight[1] @ torch.tensor([3.0, 0.0]) > net.fc.weight[1] @ torch.tensor([0.0, 1.0])
    cam = slice_cams(net, x, "ressenet", method)[0, 0]
    assert heatmap_peak(cam.numpy()) in {(i, j) for i in range(22, 26) for j in range(22, 26)}
    assert float(cam[4:10, 4:10].max()) < 0.05  # the shared uptake is not evidence for cancer
    if method == "gradcam":
        assert torch.allclose(captum_slice_gradcam(net, x, "ressenet")[0, 0], cam, atol=1e-5)
