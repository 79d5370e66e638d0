"""The small 3-D CNN of the Grad-CAM visualisation study of lung-nodule classification.

Three 3-D convolution layers, each followed by max pooling, then dropout and three fully connected
layers ending in one nodule logit, trained with binary cross-entropy. Its last convolution block is
where 3-D Grad-CAM is computed. MONAI has no network of exactly this shape (its ``Classifier`` /
``Regressor`` use strided residual units), so it is put together from MONAI ``Convolution`` blocks.

"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
from monai.networks.blocks import Convolution

__all__ = ["Small3DCNN"]


class Small3DCNN(nn.Module):
    """Three conv + pool blocks, dropout, three fully connected layers, one logit.

    Args:
        patch_size: spatial size (X, Y, Z) of the input patch (sets the first fully connected layer).
        in_channels: channels the network reads: 1 for a single-scale patch (the study's setting).
        input_scale: when the input carries the three scales of the multi-scale pipeline as channels
            (B, 3, X, Y, Z), the one to read (0 = finest, 2 = widest); ``None`` reads all
            ``in_channels`` channels as they come. Lets both networks share one data pipeline.
        channels: output channels of the three convolution blocks.
        fc_features: widths of the two hidden fully connected layers.
        dropout: dropout probability after the convolutions and between the fully connected layers.
        norm: normalisation in the convolution blocks (``None`` as in the study; ``"batch"`` trains faster).
        head: ``"flatten"``: the last block's maps are pooled and flattened into the fully connected layers
            (as in the study: the FC layers see where things are); ``"gap"``: they are averaged over space
            first (global average pooling), which makes the last block's Grad-CAM a class-activation map
            that localises the evidence, at some cost in accuracy.

    Input: (B, C, X, Y, Z). Output: (B, 1) logits for ``torch.nn.BCEWithLogitsLoss``.

    Examples:
        >>> net = Small3DCNN(patch_size=(20, 20, 12), input_scale=0)
        >>> net(torch.rand(4, 3, 20, 20, 12)).shape  # reads the 20 mm scale of each candidate
        torch.Size([4, 1])
    """

    def __init__(
        self,
        patch_size: Sequence[int] = (20, 20, 12),
        in_channels: int = 1,
        input_scale: int | None = 0,
        channels: Sequence[int] = (32, 64, 128),
        fc_features: Sequence[int] = (256, 64),
        dropout: float = 0.3,
        norm: tuple | str | None = None,
        head: str = "flatten",
    ) -> None:
        super().__init__()
        if len(patch_size) != 3:
            raise ValueError(f"patch_size must be (X, Y, Z), got {patch_size}")
        if len(channels) != 3:
            raise ValueError(f"channels needs three widths, got {channels}")
        if head not in ("flatten", "gap"):
            raise ValueError(f"head must be 'flatten' or 'gap', got {head!r}")
        self.head = head
        self.patch_size = tuple(int(s) for s in patch_size)
        self.input_scale = input_scale
        self.in_channels = 1 if input_scale is not None else int(in_channels)
        c1, c2, c3 = (int(c) for c in channels)
        self.conv1 = Convolution(3, self.in_channels, c1, kernel_size=3, act="relu", norm=norm)
        self.pool1 = nn.MaxPool3d(2, ceil_mode=True)
        self.conv2 = Convolution(3, c1, c2, kernel_size=3, act="relu", norm=norm)
        self.pool2 = nn.MaxPool3d(2, ceil_mode=True)
        # the last convolution block: the layer Grad-CAM looks at ("conv3")
        self.conv3 = Convolution(3, c2, c3, kernel_size=3, act="relu", norm=norm)
        if head == "gap":
            self.pool3 = nn.AdaptiveAvgPool3d(1)
            flat = c3
        else:
            self.pool3 = nn.MaxPool3d(2, ceil_mode=True)
            reduced = list(self.patch_size)
            for _ in range(3):
                reduced = [-(-s // 2) for s in reduced]
            flat = c3 * reduced[0] * reduced[1] * reduced[2]
        h1, h2 = (int(f) for f in fc_features)
        self.classifier = nn.Sequential(
            nn.Dropout(dropout),
            nn.Flatten(),
            nn.Linear(flat, h1),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(h1, h2),
            nn.ReLU(),
            nn.Linear(h2, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # written for TorchScript too (models/model.ts): shapes compared as lists, messages built with str()
        if x.ndim != 5:
            raise ValueError("Small3DCNN expects (B, C, X, Y, Z) patches, got " + str(list(x.shape)))
        scale = self.input_scale
        if scale is not None:
            if not 0 <= scale < x.shape[1]:
                raise ValueError(
                    "input_scale " + str(scale) + " not among the " + str(x.shape[1]) + " input channels"
                )
            x = x[:, scale : scale + 1]
        if x.shape[1] != self.in_channels or list(x.shape[2:]) != list(self.patch_size):
            raise ValueError(
                "Small3DCNN was built for "
                + str([self.in_channels] + list(self.patch_size))
                + " patches, got "
                + str(list(x.shape[1:]))
            )
        h = self.pool1(self.conv1(x))
        h = self.pool2(self.conv2(h))
        h = self.pool3(self.conv3(h))
        return self.classifier(h)
