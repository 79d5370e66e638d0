"""Small networks whose behaviour the tests know, and the batch-norm settling the trained ones need."""

from __future__ import annotations

import torch


class BlobNet(torch.nn.Module):
    """A network whose nodule evidence is known: its last conv block fires on bright voxels, and the logit
    is the mean of that (global average pooling), so its Grad-CAM must peak on the bright blob."""

    def __init__(self):
        super().__init__()
        self.conv3 = torch.nn.Sequential(torch.nn.Conv3d(3, 2, 3, padding=1), torch.nn.ReLU())
        torch.nn.init.constant_(self.conv3[0].weight, 1.0 / 81.0)
        torch.nn.init.constant_(self.conv3[0].bias, -0.35)

    def forward(self, x):
        return self.conv3(x).mean(dim=(1, 2, 3, 4))[:, None]


def settle_batch_norm(net: torch.nn.Module, x: torch.Tensor) -> None:
    """Reset the batch-norm running statistics to those of ``x`` and switch to evaluation.

    After a few dozen optimiser steps the running statistics still lag the weights; evaluating on them
    would test the lag, not the network.
    """
    for module in net.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None
    with torch.no_grad():
        net(x)
    net.eval()
