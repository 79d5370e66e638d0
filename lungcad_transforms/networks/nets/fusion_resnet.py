"""Intermediate (feature-level) fusion of two modalities: one MONAI ResNet encoder per modality, their
pooled features joined, one linear layer to the classes."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn

__all__ = ["IntermediateFusionResNet"]


class IntermediateFusionResNet(nn.Module):
    """Two-branch ResNet: each modality (a slice of the input's channels) gets its own encoder.

    MONAI offers early fusion (stack the modalities as channels of one ResNet) but no feature-level
    fusion of several encoders, which the multimodal fusion literature finds stronger; this joins two
    MONAI ``ResNet`` encoders (``feed_forward=False``: global-average-pooled features) by concatenation.

    Args:
        branch_channels: input channels of each branch, in the input's channel order (``(1, 1)``: MR, PET).
        num_classes: logits.
        spatial_dims: 2 (slices) or 3 (volumes).
        block: ``"basic"`` or ``"bottleneck"`` (MONAI ResNet block).
        layers: blocks per stage (``[3, 4, 6, 3]``: ResNet34).
        block_inplanes: channels per stage.
        dropout: dropout on the joined features before the linear layer.

    Examples:
        >>> net = IntermediateFusionResNet(block_inplanes=[8, 16, 32, 64])
        >>> net(torch.rand(2, 2, 64, 64)).shape
        torch.Size([2, 2])
    """

    def __init__(
        self,
        branch_channels: Sequence[int] = (1, 1),
        num_classes: int = 2,
        spatial_dims: int = 2,
        block: str = "basic",
        layers: Sequence[int] = (3, 4, 6, 3),
        block_inplanes: Sequence[int] = (64, 128, 256, 512),
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        from monai.networks.nets import ResNet

        self.branch_channels = [int(c) for c in branch_channels]
        self.in_channels = sum(self.branch_channels)
        self.encoders = nn.ModuleList(
            ResNet(
                block,
                list(layers),
                list(block_inplanes),
                spatial_dims=spatial_dims,
                n_input_channels=c,
                feed_forward=False,
            )  # fmt: skip
            for c in self.branch_channels
        )
        expansion = 4 if block == "bottleneck" else 1
        features = int(block_inplanes[-1]) * expansion * len(self.branch_channels)
        self.dropout = nn.Dropout(float(dropout))
        self.fc = nn.Linear(features, int(num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] != self.in_channels:
            raise ValueError(f"expected {self.in_channels} input channels, got {x.shape[1]}")
        parts = torch.split(x, self.branch_channels, dim=1)
        # indexed, not zipped: TorchScript (the Model Zoo's export) iterates a ModuleList only by enumerate
        features = [encoder(parts[i]) for i, encoder in enumerate(self.encoders)]
        return self.fc(self.dropout(torch.cat(features, dim=1)))
