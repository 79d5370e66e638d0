"""SimCLR-style self-supervised pre-training of the encoder of MONAI's 3-D ``UNet``.

The LIDC U-Net study pre-trains the contracting path of its U-Net on unlabelled lung CT patches with a
contrastive objective (two augmented views of one patch should embed close together, views of other
patches far apart), then fine-tunes the whole U-Net on the labelled nodules. MONAI ships the U-Net
(``monai.networks.nets.UNet``) and the contrastive loss (``monai.losses.ContrastiveLoss``, NT-Xent of
Chen et al. 2020) but no way to run the U-Net's encoder on its own, nor the small pieces that join them
to a MONAI ``SupervisedTrainer``; those are here:

- :class:`UNetSimCLR`: the encoder of a ``UNet`` (same constructor arguments, same parameter names),
  global average pooling and a projection MLP.
- :class:`TwoViewContrastiveLoss` and :func:`prepare_two_view_batch`: the trainer runs the network once on
  both views stacked along the batch axis and the loss splits the embeddings again.
- :func:`load_pretrained_encoder`: copies the encoder weights of a pre-training checkpoint into a
  segmentation ``UNet`` (``weights_only=True``, non-strict, logs which parameters it loaded).

MONAI's ``UNet`` nests its levels as ``Sequential(down, SkipConnection(Sequential(down, ..., up)), up)``;
the encoder is the ``down`` block of every level plus the bottom block. :class:`UNetSimCLR` keeps that
nesting and replaces each ``up`` block with nothing, so every encoder parameter keeps the name it has in
the segmentation network and the checkpoint loads into it by name.

"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn as nn
from monai.losses import ContrastiveLoss
from monai.networks.layers.simplelayers import SkipConnection
from monai.networks.nets import UNet
from monai.networks.utils import copy_model_state

from lungcad_transforms.errors import InputError
from lungcad_transforms.utils.checkpoint import load_checkpoint

logger = logging.getLogger(__name__)

__all__ = [
    "UNetSimCLR",
    "TwoViewContrastiveLoss",
    "prepare_two_view_batch",
    "encoder_parameter_names",
    "load_pretrained_encoder",
]


def _is_level(block: nn.Module) -> bool:
    return isinstance(block, nn.Sequential) and len(block) == 3 and isinstance(block[1], SkipConnection)


def _strip_decoder(block: nn.Module) -> nn.Module:
    """Replace the ``up`` block of every level of a MONAI ``UNet.model`` by ``nn.Identity`` (in place)."""
    if _is_level(block):
        block[2] = nn.Identity()
        _strip_decoder(block[1].submodule)
    return block


def _encode(block: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Run the contracting path only: each level's ``down`` block, then the bottom block."""
    while _is_level(block):
        x = block[0](x)
        block = block[1].submodule
    return block(x)


class UNetSimCLR(nn.Module):
    """The encoder of MONAI's ``UNet`` with a SimCLR projection head.

    Args:
        spatial_dims: 3 for CT patches.
        in_channels: input channels (1: one CT window).
        channels: feature channels per level, as for ``UNet`` (the last is the bottom block's).
        strides: downsampling per level, as for ``UNet``.
        num_res_units: residual units per block, as for ``UNet``.
        norm: normalisation, as for ``UNet``.
        projection_hidden: width of the projection MLP's hidden layer.
        projection_dim: size of the embedding the contrastive loss compares.
        unet_kwargs: further ``UNet`` arguments (``act``, ``dropout``, ...), so the encoder matches the
            segmentation network exactly.

    Input ``(B, C, X, Y, Z)``; output ``(B, projection_dim)`` embeddings. Parameter names of the encoder are
    those of ``UNet(...)`` (``model.0.*``, ``model.1.submodule.0.*``, ...); the head is ``head.*``.

    Examples:
        >>> net = UNetSimCLR(channels=(16, 32, 64, 128), strides=(2, 2, 2), num_res_units=2)
        >>> net(torch.rand(4, 1, 48, 48, 48)).shape  # four 48 mm lung patches at 1 mm
        torch.Size([4, 128])
    """

    def __init__(
        self,
        spatial_dims: int = 3,
        in_channels: int = 1,
        channels: Sequence[int] = (16, 32, 64, 128),
        strides: Sequence[int] = (2, 2, 2),
        num_res_units: int = 2,
        norm: Any = "batch",
        projection_hidden: int = 256,
        projection_dim: int = 128,
        **unet_kwargs: Any,
    ) -> None:
        super().__init__()
        unet = UNet(
            spatial_dims=spatial_dims,
            in_channels=in_channels,
            out_channels=1,  # the decoder is dropped, so its width is irrelevant
            channels=channels,
            strides=strides,
            num_res_units=num_res_units,
            norm=norm,
            **unet_kwargs,
        )
        self.model = _strip_decoder(unet.model)
        self.pool = nn.AdaptiveAvgPool3d(1) if spatial_dims == 3 else nn.AdaptiveAvgPool2d(1)
        self.head = nn.Sequential(
            nn.Linear(channels[-1], projection_hidden),
            nn.ReLU(inplace=True),
            nn.Linear(projection_hidden, projection_dim),
        )

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled bottom-level features ``(B, channels[-1])``: the representation fine-tuning starts from."""
        return torch.flatten(self.pool(_encode(self.model, x)), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encode(x))


class TwoViewContrastiveLoss(nn.Module):
    """NT-Xent over two views stacked along the batch axis: rows ``[:B]`` view 1, ``[B:]`` view 2.

    Wraps ``monai.losses.ContrastiveLoss`` so that a MONAI ``SupervisedTrainer`` can drive pre-training:
    the trainer calls ``loss(network(inputs), targets)``; :func:`prepare_two_view_batch` makes ``inputs`` the
    concatenated views, so the embeddings arrive here concatenated too. ``targets`` is not used.

    Args:
        temperature: softmax temperature of NT-Xent (SimCLR's 0.5 for small batches).

    Examples:
        >>> loss = TwoViewContrastiveLoss(temperature=0.5)
        >>> z = torch.nn.functional.normalize(torch.rand(8, 128), dim=1)  # 4 patches x 2 views
        >>> float(loss(z, None)) > 0
        True
    """

    def __init__(self, temperature: float = 0.5) -> None:
        super().__init__()
        self.contrastive = ContrastiveLoss(temperature=temperature)

    def forward(self, embeddings: torch.Tensor, targets: Any = None) -> torch.Tensor:
        if embeddings.shape[0] % 2:
            raise ValueError(
                f"expected the two views stacked along the batch axis, got batch {embeddings.shape[0]}"
            )
        half = embeddings.shape[0] // 2
        return self.contrastive(embeddings[:half], embeddings[half:])


def prepare_two_view_batch(
    batchdata: Mapping[str, torch.Tensor],
    device: str | torch.device | None = None,
    non_blocking: bool = False,
    first_key: str = "image",
    second_key: str = "image_2",
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """``prepare_batch`` for ``SupervisedTrainer``: both views of each patch, concatenated along the batch.

    Args:
        batchdata: a collated batch holding the two views under ``first_key`` and ``second_key``.
        device: where the trainer runs.
        non_blocking: passed to ``Tensor.to``.
        first_key: key of the first view.
        second_key: key of the second view.
        kwargs: ignored (the trainer passes its own extras).

    Returns:
        ``(inputs, None)``: inputs ``(2B, C, X, Y, Z)``; SimCLR has no targets.

    Examples:
        >>> batch = {"image": torch.rand(2, 1, 48, 48, 48), "image_2": torch.rand(2, 1, 48, 48, 48)}
        >>> prepare_two_view_batch(batch, "cpu")[0].shape
        torch.Size([4, 1, 48, 48, 48])
    """
    views = torch.cat([torch.as_tensor(batchdata[first_key]), torch.as_tensor(batchdata[second_key])], dim=0)
    return views.to(device=device, non_blocking=non_blocking), None


def encoder_parameter_names(network: nn.Module) -> list[str]:
    """State-dict keys of a MONAI ``UNet`` that belong to its encoder (down blocks and bottom block).

    Args:
        network: a MONAI ``UNet``, a :class:`UNetSimCLR`, or either wrapped as ``.module`` (DDP).

    Examples:
        >>> unet = UNet(3, 1, 1, channels=(16, 32, 64, 128), strides=(2, 2, 2), num_res_units=2)
        >>> names = encoder_parameter_names(unet)
        >>> names[0], any(n.startswith("model.2.") for n in names)  # model.2 is the last up block
        ('model.0.conv.unit0.conv.weight', False)
    """
    model = network.module if isinstance(network, nn.parallel.DistributedDataParallel) else network
    block, prefix, prefixes = model.model, "model.", []
    while _is_level(block):
        prefixes.append(prefix + "0.")
        block, prefix = block[1].submodule, prefix + "1.submodule."
    prefixes.append(prefix)  # the bottom block
    return [name for name in model.state_dict() if name.startswith(tuple(prefixes))]


def load_pretrained_encoder(
    network: nn.Module, checkpoint: str | os.PathLike, map_location: str | torch.device = "cpu"
) -> list[str]:
    """Copy the encoder weights of a SimCLR pre-training checkpoint into a segmentation ``UNet``.

    Parameters are matched by name and shape (``monai.networks.utils.copy_model_state``); the projection
    head and the randomly initialised decoder are left alone. The checkpoint is read with
    ``weights_only=True``; it may be a plain state dict or ``{"model": state_dict}`` (ignite's saver).

    Args:
        network: the segmentation ``UNet`` (or a module wrapping it as ``.module``, e.g. DDP).
        checkpoint: path of the pre-training checkpoint (``models/pretrained_encoder.pt``).
        map_location: where to load the tensors.

    Returns:
        the names of the parameters loaded.

    Raises:
        InputError: the file is missing, not a state dict, or shares no parameter with ``network``.

    Examples:
        >>> unet = UNet(3, 1, 1, channels=(16, 32, 64, 128), strides=(2, 2, 2), num_res_units=2)
        >>> loaded = load_pretrained_encoder(unet, "models/pretrained_encoder.pt")  # doctest: +SKIP
        >>> len(loaded)  # doctest: +SKIP
        66
    """
    path = os.fspath(checkpoint)
    if not os.path.isfile(path):
        raise InputError(path, "pre-trained encoder checkpoint not found (run configs/pretrain.json first)")
    state = load_checkpoint(path, map_location=map_location)
    if isinstance(state, Mapping) and "model" in state and isinstance(state["model"], Mapping):
        state = state["model"]
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise InputError(path, "is not a state dict of tensors")
    target = network.module if isinstance(network, nn.parallel.DistributedDataParallel) else network
    # only encoder parameters: a full segmentation checkpoint passed by mistake must not overwrite the decoder
    encoder_keys = set(encoder_parameter_names(target))
    encoder_state = {k: v for k, v in state.items() if k in encoder_keys}
    # check before copying: scalars (PReLU slopes, batch-norm counters) match any width, kernels do not
    matching = [k for k, v in encoder_state.items() if v.ndim > 1 and target.state_dict()[k].shape == v.shape]
    if not matching:
        raise InputError(
            path, "shares no encoder parameter (name and shape) with the network: other channels or strides?"
        )
    _, loaded, _ = copy_model_state(target, encoder_state, inplace=True)
    if len(loaded) < len(encoder_keys):
        logger.warning(
            "pre-trained encoder %s: only %d of %d encoder tensors match",
            path,
            len(loaded),
            len(encoder_keys),
        )
    skipped = sorted(set(state) - set(loaded))
    logger.info(
        "pre-trained encoder %s: loaded %d of %d encoder tensors (%s ... %s); %d checkpoint tensors not used "
        "(projection head or mismatched shapes)",
        path,
        len(loaded),
        len(encoder_keys),
        loaded[0],
        loaded[-1],
        len(skipped),
    )
    return loaded
