"""The PET/CT slice classifiers: backbones by name, exact CAM head, Res-SE Net, transfer learning."""

from __future__ import annotations

import logging

import pytest
import torch

from lungcad_transforms.errors import InputError
from lungcad_transforms.networks.nets.cam_classifier import (
    BACKBONES,
    backbone_stages,
    build_cam_classifier,
    cam_layers,
)
from lungcad_transforms.networks.nets.pretrained import freeze_stages, load_pretrained_weights
from lungcad_transforms.networks.nets.res_se_net import ResSENet

TINY = {"ressenet": {"channels": (4, 8, 8), "blocks": (1, 1)}, "resnet18": {"block_inplanes": [4, 8, 8, 8]}}


def test_res_se_net_head_is_gap_then_one_linear_so_cam_is_exact(single_torch_thread):
    from monai.visualize import CAM

    net = ResSENet(in_channels=3, channels=(4, 8, 8), blocks=(1, 1)).eval()
    x = torch.rand(2, 3, 32, 32)
    maps = net.features(x)
    logits = net(x)
    # CAM of class c averaged over space is the class logit minus the bias: nothing sits between them
    weighted = torch.einsum("kc,bchw->bkhw", net.fc.weight, maps).mean(dim=(2, 3)) + net.fc.bias
    assert torch.allclose(weighted, logits, atol=1e-5)
    cam = CAM(nn_module=net, target_layers="features", fc_layers="fc")
    assert cam(x).shape == (2, 1, 32, 32)


@pytest.mark.parametrize("backbone", sorted(TINY))
def test_tiny_backbones_give_two_logits_and_a_cam(backbone, single_torch_thread):
    from monai.visualize import CAM

    net = build_cam_classifier(backbone, in_channels=2, **TINY[backbone]).eval()
    x = torch.rand(1, 2, 32, 32)
    assert net(x).shape == (1, 2)
    target, fc = cam_layers(backbone)
    assert CAM(nn_module=net, target_layers=target, fc_layers=fc)(x).shape == (1, 1, 32, 32)


def test_every_backbone_name_is_known_and_a_wrong_one_is_refused():
    assert set(BACKBONES) == {"densenet121", "resnet18", "resnet34", "resnet50", "seresnet50",
                              "efficientnet-b0", "ressenet"}  # fmt: skip
    assert cam_layers("EfficientNet_B0") == ("_swish", "_fc") and cam_layers("Res-SE-Net") == (
        "features",
        "fc",
    )
    with pytest.raises(ValueError, match="unknown backbone"):
        build_cam_classifier("vgg16")


def test_checkpoint_in_torchvision_naming_loads_by_name_and_shape(tmp_path, caplog, single_torch_thread):
    net = build_cam_classifier("resnet18", in_channels=2, **TINY["resnet18"])
    # an "ImageNet" checkpoint: RGB first convolution, 1000-class head, wrapped the way trainers save it
    donor = build_cam_classifier("resnet18", in_channels=3, num_classes=1000, **TINY["resnet18"])
    state = {f"module.{k}": v for k, v in donor.state_dict().items()}
    path = tmp_path / "imagenet.pth"
    torch.save({"state_dict": state}, path)
    with caplog.at_level(logging.INFO):
        report = load_pretrained_weights(net, path)
    assert report["adapted"] == ["conv1.weight"]  # 3 -> 2 input channels: the mean kernel
    assert set(report["skipped"]) == {"fc.weight", "fc.bias"}  # the 1000-class head stays fresh
    assert report["loaded"] == report["total"] - 2
    assert f"loaded {report['loaded']} of the network's {report['total']} tensors" in caplog.text
    assert torch.equal(net.layer4[0].conv1.weight, donor.layer4[0].conv1.weight)
    expected = donor.conv1.weight.mean(dim=1, keepdim=True) * 1.5
    assert torch.allclose(net.conv1.weight, expected.expand(-1, 2, -1, -1))


def test_medicalnet_style_3d_checkpoint_is_summed_over_depth(tmp_path, single_torch_thread):
    net = build_cam_classifier("resnet18", in_channels=1, **TINY["resnet18"])
    donor = build_cam_classifier("resnet18", spatial_dims=3, in_channels=1, **TINY["resnet18"])
    torch.save({"state_dict": {f"module.{k}": v for k, v in donor.state_dict().items()}}, tmp_path / "m.pth")
    report = load_pretrained_weights(net, tmp_path / "m.pth", exclude=["fc."])
    assert "conv1.weight" in report["adapted"] and report["loaded"] > 10
    assert torch.allclose(net.conv1.weight, donor.conv1.weight.sum(dim=-3))


def test_a_checkpoint_that_fits_nothing_or_is_no_checkpoint_is_an_input_error(tmp_path):
    net = ResSENet(in_channels=3, channels=(4, 8, 8), blocks=(1, 1))
    torch.save({"other.weight": torch.zeros(3)}, tmp_path / "foreign.pt")
    with pytest.raises(InputError, match="no tensor matches"):
        load_pretrained_weights(net, tmp_path / "foreign.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="torch checkpoint"):
        load_pretrained_weights(net, tmp_path / "junk.pt")


def test_freezing_the_first_stages_keeps_their_weights_and_statistics(single_torch_thread):
    net = build_cam_classifier("resnet18", in_channels=2, **TINY["resnet18"])
    stages = backbone_stages(net, "resnet18")
    assert len(stages) == 5
    assert freeze_stages(net, stages, 2) > 0
    before = {k: v.clone() for k, v in net.state_dict().items()}
    optimizer = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=0.1)
    net.train()
    loss = net(torch.rand(4, 2, 32, 32)).sum()
    loss.backward()
    optimizer.step()
    after = net.state_dict()
    for name in ("conv1.weight", "bn1.running_mean", "layer1.0.conv1.weight", "layer1.0.bn1.running_var"):
        assert torch.equal(before[name], after[name]), name
    assert not torch.equal(before["layer2.0.conv1.weight"], after["layer2.0.conv1.weight"])
    with pytest.raises(ValueError):
        freeze_stages(net, stages, 6)
