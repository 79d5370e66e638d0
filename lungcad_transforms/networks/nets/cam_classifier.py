"""2-D slice classifiers chosen by name, all with the CAM-ready head: global average pooling, one linear.

The FDG PET/CT study compares well-known CNN backbones (ResNet, DenseNet, EfficientNet, SE-ResNet) with
its own Res-SE Net. Every backbone here ends as the study's do: global average pooling straight after
the last convolution block, then one linear layer to the classes (softmax outside), so that the class
activation map of the last block (``monai.visualize.CAM``) is exact. MONAI's nets already have that head;
this module builds them from one config key and says, per backbone, which layer CAM reads, which is the
linear layer, and which modules are the stages that transfer learning can freeze.
"""

from __future__ import annotations

from typing import Any

import torch.nn as nn

from lungcad_transforms.networks.nets.res_se_net import ResSENet

__all__ = ["BACKBONES", "build_cam_classifier", "cam_layers", "backbone_stages"]


#: backbone name -> (CAM target layer, linear layer), as module names inside the network
BACKBONES: dict[str, tuple[str, str]] = {
    "densenet121": ("class_layers.relu", "class_layers.out"),
    "resnet18": ("layer4", "fc"),
    "resnet34": ("layer4", "fc"),
    "resnet50": ("layer4", "fc"),
    "seresnet50": ("layer4", "last_linear"),
    # EfficientNet applies one Swish module after the stem and after the head: the hook keeps the last call
    "efficientnet-b0": ("_swish", "_fc"),
    "ressenet": ("features", "fc"),
}


_RESNET_LAYOUT = {"resnet18": ("basic", [2, 2, 2, 2]), "resnet34": ("basic", [3, 4, 6, 3]),
                  "resnet50": ("bottleneck", [3, 4, 6, 3])}  # fmt: skip


def build_cam_classifier(
    backbone: str, in_channels: int = 3, num_classes: int = 2, spatial_dims: int = 2, **kwargs: Any
) -> nn.Module:
    """A classifier of ``backbone`` with a GAP + linear head giving ``num_classes`` logits.

    Args:
        backbone: one of :data:`BACKBONES` (case-insensitive; ``"efficientnet_b0"`` accepted too).
        in_channels: input channels (CT, PET SUV[, fused]).
        num_classes: logits (2 for no cancer / cancer).
        spatial_dims: 2 for slices.
        kwargs: passed to the network (e.g. ``block_inplanes`` for a narrow ResNet in tests,
            ``channels`` / ``blocks`` for the Res-SE Net).

    Raises:
        ValueError: an unknown backbone.

    Examples:
        >>> import torch
        >>> net = build_cam_classifier("resnet18", in_channels=2)
        >>> net(torch.rand(1, 2, 64, 64)).shape
        torch.Size([1, 2])
    """
    from monai.networks import nets

    name = _canonical(backbone)
    if name == "densenet121":
        return nets.DenseNet121(
            spatial_dims=spatial_dims, in_channels=in_channels, out_channels=num_classes, **kwargs
        )
    if name.startswith("resnet"):
        # the ResNet class, not the resnetNN helpers: those fix block_inplanes, which tests narrow
        block, layers = _RESNET_LAYOUT[name]
        kwargs.setdefault("block_inplanes", nets.resnet.get_inplanes())
        return nets.ResNet(
            block,
            layers,
            spatial_dims=spatial_dims,
            n_input_channels=in_channels,
            num_classes=num_classes,
            **kwargs,
        )
    if name == "seresnet50":
        return nets.SEResNet50(
            spatial_dims=spatial_dims,
            in_channels=in_channels,
            num_classes=num_classes,
            dropout_prob=None,
            **kwargs,
        )
    if name == "efficientnet-b0":
        return nets.EfficientNetBN(
            "efficientnet-b0", pretrained=False, spatial_dims=spatial_dims, in_channels=in_channels,
            num_classes=num_classes, **kwargs,
        )  # fmt: skip
    return ResSENet(spatial_dims=spatial_dims, in_channels=in_channels, num_classes=num_classes, **kwargs)


def _canonical(backbone: str) -> str:
    name = str(backbone).strip().lower().replace("_", "-")
    name = {"res-se-net": "ressenet", "ressenet": "ressenet", "resse": "ressenet"}.get(name, name)
    name = name.replace("-", "") if name.startswith(("resnet", "seresnet", "densenet")) else name
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {backbone!r}; choose one of {', '.join(BACKBONES)}")
    return name


def cam_layers(backbone: str) -> tuple[str, str]:
    """``(target_layer, fc_layer)`` of ``backbone`` for ``monai.visualize.CAM`` / ``GradCAM``.

    Examples:
        >>> cam_layers("resnet34")
        ('layer4', 'fc')
    """
    return BACKBONES[_canonical(backbone)]


def backbone_stages(network: nn.Module, backbone: str) -> list[nn.Module]:
    """The network's stages from the input on (stem first, the linear head never among them).

    Freezing "the first N stages" freezes the first N of this list.

    Examples:
        >>> net = build_cam_classifier("resnet18", in_channels=2)
        >>> len(backbone_stages(net, "resnet18"))  # stem, layer1..layer4
        5
    """
    network = getattr(network, "module", network)  # DistributedDataParallel
    name = _canonical(backbone)
    if name.startswith("resnet"):
        stem = nn.ModuleList([network.conv1, network.bn1])
        return [stem, network.layer1, network.layer2, network.layer3, network.layer4]
    if name == "seresnet50":
        return [network.layer0, network.layer1, network.layer2, network.layer3, network.layer4]
    if name == "densenet121":
        f = network.features
        stem = nn.ModuleList([f.conv0, f.norm0])
        stages = [
            nn.ModuleList([getattr(f, f"denseblock{i}"), getattr(f, f"transition{i}")]) for i in (1, 2, 3)
        ]
        return [stem, *stages, nn.ModuleList([f.denseblock4, f.norm5])]
    if name == "efficientnet-b0":
        return [nn.ModuleList([network._conv_stem, network._bn0]), *network._blocks.children(),
                nn.ModuleList([network._conv_head, network._bn1])]  # fmt: skip
    return list(network.features.children())
