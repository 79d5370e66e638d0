"""CT-GAN's networks: a 3-D U-Net in-painter (generator); the discriminator is MONAI's ``PatchDiscriminator``."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.networks.nets import UNet
from torch import nn

__all__ = ["CTGANGenerator"]


class CTGANGenerator(nn.Module):
    """In-paint the masked centre of a CT cube (after Mirsky et al. 2019, "CT-GAN").

    Input channels: the cube (HU scaled to [-1, 1]) with its centre blanked, the in-paint mask (1 inside),
    and the target-nodule sphere (1 inside the requested nodule, all 0 for removal). A MONAI ``UNet``
    predicts the cube (tanh); outside the mask the input is kept as it is, so only the centre is generated.

    Args:
        channels: UNet feature channels per level.
        strides: UNet down-sampling strides (one fewer than ``channels``).
        num_res_units: residual units per UNet block.

    Examples:
        >>> g = CTGANGenerator(channels=(4, 8, 16), strides=(2, 2))
        >>> x = torch.zeros(2, 3, 16, 16, 16)
        >>> g(x).shape
        torch.Size([2, 1, 16, 16, 16])
    """

    def __init__(
        self,
        channels: Sequence[int] = (16, 32, 64, 128),
        strides: Sequence[int] = (2, 2, 2),
        num_res_units: int = 1,
    ) -> None:
        super().__init__()
        self.unet = UNet(
            spatial_dims=3,
            in_channels=3,
            out_channels=1,
            channels=tuple(channels),
            strides=tuple(strides),
            num_res_units=num_res_units,
            norm="INSTANCE",
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        masked, mask = x[:, :1], x[:, 1:2]
        generated = torch.tanh(self.unet(x))
        return mask * generated + (1 - mask) * masked
