"""Transfer learning: load a checkpoint file into a network by name and shape, freeze its first stages.

Pre-trained weights come from the user as a file (nothing is downloaded at run time): ImageNet weights
in torchvision or MONAI naming (the two share the ResNet names), a MedicalNet checkpoint (3-D, keys
prefixed ``module.``, under ``state_dict``), or a checkpoint of this project. Tensors are matched by name
after the usual prefixes are stripped, and by shape after two adaptations that transfer learning across
input types needs: a first convolution with another number of input channels gets the channel mean of
the pre-trained kernels (repeated), and a 3-D kernel loaded into a 2-D network is summed over depth.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn as nn

from lungcad_transforms.errors import InputError
from lungcad_transforms.utils.checkpoint import load_checkpoint

logger = logging.getLogger(__name__)

__all__ = ["load_pretrained_weights", "freeze_stages", "build_transfer_classifier"]


_PREFIXES = ("module.", "model.", "network.", "backbone.", "encoder.")

_WRAPPERS = ("state_dict", "model", "network", "net")


def _state_dict(content: Any, path: str) -> dict[str, torch.Tensor]:
    for _ in range(3):  # a checkpoint of ignite's ModelCheckpoint or MedicalNet nests the weights
        if isinstance(content, Mapping) and not any(isinstance(v, torch.Tensor) for v in content.values()):
            inner = next((content[k] for k in _WRAPPERS if isinstance(content.get(k), Mapping)), None)
            if inner is None:
                break
            content = inner
    if not isinstance(content, Mapping) or not any(isinstance(v, torch.Tensor) for v in content.values()):
        raise InputError(path, "holds no state dict of tensors (looked under state_dict / model / network)")
    out = {}
    for key, value in content.items():
        if not isinstance(value, torch.Tensor):
            continue
        name = str(key)
        stripped = True
        while stripped:
            stripped = False
            for prefix in _PREFIXES:
                if name.startswith(prefix):
                    name, stripped = name[len(prefix) :], True
        out[name] = value
    return out


def _adapt(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor | None:
    """``source`` reshaped to ``target``'s shape where transfer learning has a rule for it, else None."""
    if source.shape == target.shape:
        return source
    if source.ndim == target.ndim + 1 and source.ndim >= 4:
        source = source.sum(dim=-3)  # 3-D kernel into a 2-D network: its depth summed, the response kept
    if source.ndim == target.ndim and source.ndim >= 3 and source.shape[2:] == target.shape[2:]:
        if source.shape[0] == target.shape[0] and source.shape[1] != target.shape[1]:
            # a first convolution with other input channels: the mean kernel on every channel, rescaled
            mean = source.mean(dim=1, keepdim=True) * (source.shape[1] / target.shape[1])
            return mean.expand_as(target).clone()
    return source if source.shape == target.shape else None


def load_pretrained_weights(
    network: nn.Module,
    path: str | os.PathLike,
    exclude: Sequence[str] = (),
    sha256: str | None = None,
) -> dict[str, Any]:
    """Copy the tensors of a checkpoint file into ``network`` where name and (adapted) shape match.

    The file is read with ``torch.load(weights_only=True)`` (it cannot run code). Tensors whose name is
    not in the network, or whose shape cannot be adapted (see the module docstring), are left as they
    are: a 1000-class ImageNet linear layer does not overwrite a 2-class head. The log says how many
    tensors loaded.

    Args:
        network: the model (a ``DistributedDataParallel`` wrapper is looked through).
        path: the checkpoint file.
        exclude: name prefixes never loaded (e.g. ``["fc."]`` to keep a fresh head whatever its shape).
        sha256: expected SHA-256 of the file, checked when given.

    Returns:
        ``{"loaded": n, "total": tensors in the network, "skipped": names in the file not used,
        "adapted": names loaded after a channel or depth adaptation}``.

    Raises:
        InputError: the file is missing, unreadable, or has no tensor that fits the network.

    Examples:
        >>> report = load_pretrained_weights(net, "resnet18_imagenet.pth")  # doctest: +SKIP
        >>> report["loaded"], report["total"]  # doctest: +SKIP
        (120, 122)
    """
    path = os.fspath(path)
    source = _state_dict(load_checkpoint(path, map_location="cpu", sha256=sha256), path)
    module = getattr(network, "module", network)
    target = module.state_dict()
    loaded: dict[str, torch.Tensor] = {}
    adapted, skipped = [], []
    for name, tensor in source.items():
        if name not in target or any(name.startswith(p) for p in exclude):
            skipped.append(name)
            continue
        value = _adapt(tensor, target[name])
        if value is None:
            skipped.append(name)
            continue
        if value.shape != tensor.shape:
            adapted.append(name)
        loaded[name] = value.to(dtype=target[name].dtype)
    if not loaded:
        raise InputError(path, f"no tensor matches the network by name and shape (file has {len(source)})")
    module.load_state_dict({**target, **loaded})
    logger.info(
        "pretrained weights %s: loaded %d of the network's %d tensors (%d adapted, %d in the file unused)",
        path, len(loaded), len(target), len(adapted), len(skipped),
    )  # fmt: skip
    return {"loaded": len(loaded), "total": len(target), "skipped": skipped, "adapted": adapted}


def _keep_eval(module: nn.Module, _inputs: Any) -> None:
    module.training = False


def freeze_stages(network: nn.Module, stages: Sequence[nn.Module], n: int) -> int:
    """Freeze the parameters of the first ``n`` of ``stages`` (and keep their batch-norm statistics).

    Args:
        network: the model the stages belong to.
        stages: its stages from the input on (:func:`~lungcad_transforms.networks.nets.cam_classifier.backbone_stages`).
        n: how many to freeze; 0 freezes nothing.

    Returns:
        the number of parameters frozen.

    Examples:
        >>> from lungcad_transforms.networks.nets.cam_classifier import build_cam_classifier, backbone_stages
        >>> net = build_cam_classifier("resnet18", in_channels=2)
        >>> freeze_stages(net, backbone_stages(net, "resnet18"), 2) > 0
        True
    """
    if n < 0 or n > len(stages):
        raise ValueError(f"can freeze 0..{len(stages)} stages, not {n}")
    frozen = 0
    for stage in stages[:n]:
        for p in stage.parameters():
            if p.requires_grad:
                p.requires_grad_(False)
                frozen += p.numel()
        for m in stage.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                # the trainer calls train() every epoch: a pre-hook keeps frozen statistics frozen
                m.register_forward_pre_hook(_keep_eval)
    logger.info("froze the first %d of %d stages (%d parameters)", n, len(stages), frozen)
    return frozen


def build_transfer_classifier(
    backbone: str,
    in_channels: int = 3,
    num_classes: int = 2,
    pretrained: str | os.PathLike | None = None,
    freeze: int = 0,
    exclude: Sequence[str] = (),
    sha256: str | None = None,
    net_kwargs: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> nn.Module:
    """A CAM classifier of ``backbone``, optionally started from a checkpoint file with its first stages frozen.

    The one call a bundle config makes for transfer learning: the network by name
    (:func:`~lungcad_transforms.networks.nets.cam_classifier.build_cam_classifier`), the user's weights
    matched by name and shape (:func:`load_pretrained_weights`), then the first ``freeze`` stages frozen
    (:func:`freeze_stages`).

    Args:
        backbone: a name of ``cam_classifier.BACKBONES``.
        in_channels: input channels.
        num_classes: output logits.
        pretrained: checkpoint file, or None / "" to start from random weights.
        freeze: stages to freeze from the input on (needs ``pretrained``: frozen random weights learn nothing).
        exclude: name prefixes never loaded from the file.
        sha256: expected SHA-256 of the checkpoint file.
        net_kwargs: passed to the network (one config key, e.g. ``{"channels": [16, 32, 64]}``).
        kwargs: passed to the network too.

    Raises:
        ValueError: ``freeze`` without ``pretrained``.

    Examples:
        >>> net = build_transfer_classifier("resnet18", in_channels=2, pretrained="imagenet.pth", freeze=2)  # doctest: +SKIP
    """
    from lungcad_transforms.networks.nets.cam_classifier import backbone_stages, build_cam_classifier

    options = {**dict(net_kwargs or {}), **kwargs}
    network = build_cam_classifier(backbone, in_channels=in_channels, num_classes=num_classes, **options)
    if pretrained:
        load_pretrained_weights(network, pretrained, exclude=exclude, sha256=sha256)
    if freeze:
        if not pretrained:
            raise ValueError(
                f"freeze={freeze} needs pretrained weights: frozen random stages would learn nothing"
            )
        freeze_stages(network, backbone_stages(network, backbone), int(freeze))
    return network
