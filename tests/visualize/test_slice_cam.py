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
    maps = net.features(x).sum(1, keepdim=True)
    upsampled = torch.nn.functional.interpolate(maps, size=(32, 32), mode="bilinear", align_corners=False)
    cam = slice_cams(net, x, "ressenet", "cam")
    expected = (upsampled - upsampled.min()) / (upsampled.max() - upsampled.min())
    assert torch.allclose(cam, expected, atol=1e-5)


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
