"""Multi-scale gradual-integration CNN (MGI-CNN) for lung-nodule false-positive reduction, in 3-D.

Kim, Yoon, Choi and Suk, "Multi-scale gradual integration CNN for false positive reduction in
pulmonary nodule detection", Neural Networks 115 (2019) 1-10. The network sees each candidate at
three scales (in the paper: 20x20x6, 30x30x10 and 40x40x26-voxel crops of a LUNA16 scan, all resized
to 20x20x6) and integrates them *gradually*: a stream starts from one scale, and the next scale's
patch is concatenated to its feature maps before the next pair of convolutions, and so on. Two
streams run in opposite orders, zoom-in (widest context first, finest last) and zoom-out (finest
first, widest last); their features are merged (element-wise sum in the paper's proposed variant)
and classified by further convolutions and fully connected layers into one nodule logit.

The paper's network is 2-D, with the slices of a patch as channels; this one is its 3-D analogue
(3-D convolutions over patches resampled to a common grid), so that 3-D Grad-CAM maps come out of it.
No MONAI network has this topology (two streams that take a new input at every stage), so it is
assembled here from MONAI ``Convolution`` blocks.

"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
from monai.networks.blocks import Convolution

__all__ = ["GradualIntegrationStream", "MGICNN"]


def _conv_pair(
    in_channels: int, out_channels: int, act: tuple | str, norm: tuple | str | None
) -> nn.Sequential:
    return nn.Sequential(
        Convolution(3, in_channels, out_channels, kernel_size=3, act=act, norm=norm),
        Convolution(3, out_channels, out_channels, kernel_size=3, act=act, norm=norm),
    )


class GradualIntegrationStream(nn.Module):
    """One MGI-CNN stream: scales enter one by one, each concatenated to the features so far.

    Args:
        features: output channels of the three integration stages and of the stage after pooling,
            e.g. the paper's ``(64, 128, 192, 256)``.
        act: activation (the paper uses leaky ReLU).
        norm: normalisation after each convolution.

    Input: three tensors (B, 1, X, Y, Z), as three arguments in the order this stream integrates them
    (separate arguments rather than one sequence, so that the network can be compiled by TorchScript).
    Output: (B, features[3], X', Y', Z') with X' = ceil(X / 2) etc.
    """

    def __init__(
        self,
        features: Sequence[int] = (64, 128, 192, 256),
        act: tuple | str = ("leakyrelu", {"negative_slope": 0.2}),
        norm: tuple | str | None = "batch",
    ) -> None:
        super().__init__()
        f1, f2, f3, f4 = (int(f) for f in features)
        self.stage1 = _conv_pair(1, f1, act, norm)
        self.stage2 = _conv_pair(f1 + 1, f2, act, norm)
        self.stage3 = _conv_pair(f2 + 1, f3, act, norm)
        # 2x2x2 windows, so that pooled cell k is centred at input 2k + 0.5, exactly where MONAI's Grad-CAM
        # upsampler (trilinear, align_corners=False) puts it; the paper's 3-wide windows would shift the
        # heatmap by half a voxel per pooling
        self.pool = nn.MaxPool3d(kernel_size=2, stride=2, ceil_mode=True)
        self.stage4 = _conv_pair(f3, f4, act, norm)

    def forward(self, first: torch.Tensor, second: torch.Tensor, third: torch.Tensor) -> torch.Tensor:
        h = self.stage1(first)
        h = self.stage2(torch.cat([second, h], dim=1))
        h = self.stage3(torch.cat([third, h], dim=1))
        return self.stage4(self.pool(h))


class MGICNN(nn.Module):
    """3-D multi-scale gradual-integration CNN: zoom-in and zoom-out streams, merged, one nodule logit.

    Args:
        patch_size: spatial size (X, Y, Z) of the common grid all three scales are resampled to; sets the
            size of the first fully connected layer (the paper flattens the last feature maps).
        features: channels of the three integration stages, the post-pooling stage of each stream,
            and the final stage after the merge. The paper's widths are ``(64, 128, 192, 256, 512)``;
            narrower ones train on a CPU.
        fc_features: widths of the two hidden fully connected layers (paper: 1024, 1024).
        dropout: dropout probability before each hidden fully connected layer's output (paper: 0.5).
        merge: how the two streams are combined: ``"sum"`` (the paper's proposed element-wise sum) or
            ``"concat"`` (its concatenation variant).
        act: activation of the convolution blocks.
        norm: normalisation of the convolution blocks.

    Input: (B, 3, X, Y, Z), channel k = scale k, ordered from the smallest field of view (finest
    detail) to the largest (widest context). Output: (B, 1) nodule logits; train with
    ``torch.nn.BCEWithLogitsLoss``.

    Examples:
        >>> net = MGICNN(patch_size=(20, 20, 12), features=(8, 16, 24, 32, 64), fc_features=(256, 128))
        >>> patches = torch.rand(2, 3, 20, 20, 12)  # 20, 30 and 40 mm boxes around two candidates
        >>> net(patches).shape
        torch.Size([2, 1])
    """

    def __init__(
        self,
        patch_size: Sequence[int] = (20, 20, 12),
        features: Sequence[int] = (64, 128, 192, 256, 512),
        fc_features: Sequence[int] = (1024, 1024),
        dropout: float = 0.5,
        merge: str = "sum",
        act: tuple | str = ("leakyrelu", {"negative_slope": 0.2}),
        norm: tuple | str | None = "batch",
    ) -> None:
        super().__init__()
        if len(features) != 5:
            raise ValueError(
                f"features needs 5 widths (3 integration stages, post-pool, final), got {features}"
            )
        if merge not in ("sum", "concat"):
            raise ValueError(f"merge must be 'sum' or 'concat', got {merge!r}")
        if len(patch_size) != 3:
            raise ValueError(f"patch_size must be (X, Y, Z), got {patch_size}")
        self.patch_size = tuple(int(s) for s in patch_size)
        self.merge = merge
        stream_features = tuple(features[:4])
        self.zoom_in = GradualIntegrationStream(stream_features, act=act, norm=norm)
        self.zoom_out = GradualIntegrationStream(stream_features, act=act, norm=norm)
        merged = features[3] * (2 if merge == "concat" else 1)
        self.pool = nn.MaxPool3d(kernel_size=2, stride=2, ceil_mode=True)
        # the last convolution block: the layer Grad-CAM looks at ("final_block")
        self.final_block = _conv_pair(merged, int(features[4]), act, norm)
        reduced = [s for s in self.patch_size]
        for _ in range(2):  # two 2x poolings (ceil mode)
            reduced = [-(-s // 2) for s in reduced]
        flat = int(features[4]) * reduced[0] * reduced[1] * reduced[2]
        h1, h2 = (int(f) for f in fc_features)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(flat, h1),
            nn.LeakyReLU(0.2),
            nn.Dropout(dropout),
            nn.Linear(h1, h2),
            nn.LeakyReLU(0.2),
            nn.Dropout(dropout),
            nn.Linear(h2, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # written for TorchScript too (models/model.ts): shapes compared as lists, messages built with str()
        if x.ndim != 5 or x.shape[1] != 3:
            raise ValueError(
                "MGICNN expects (B, 3, X, Y, Z) patches (three scales), got " + str(list(x.shape))
            )
        if list(x.shape[2:]) != list(self.patch_size):
            raise ValueError(
                "MGICNN was built for patches of "
                + str(list(self.patch_size))
                + ", got "
                + str(list(x.shape[2:]))
            )
        fine, middle, wide = x[:, 0:1], x[:, 1:2], x[:, 2:3]
        zi = self.zoom_in(wide, middle, fine)
        zo = self.zoom_out(fine, middle, wide)
        merged = zi + zo if self.merge == "sum" else torch.cat([zi, zo], dim=1)
        return self.classifier(self.final_block(self.pool(merged)))
