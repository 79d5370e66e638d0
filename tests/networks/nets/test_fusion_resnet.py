from __future__ import annotations

import pytest
import torch

from lungcad_transforms.networks.nets.fusion_resnet import IntermediateFusionResNet


@pytest.mark.parametrize("spatial_dims, shape", [(2, (3, 2, 40, 40)), (3, (2, 2, 24, 24, 8))])
def test_two_encoders_joined_give_class_logits(spatial_dims, shape):
    net = IntermediateFusionResNet(spatial_dims=spatial_dims, block_inplanes=[4, 8, 16, 32])
    assert net(torch.rand(shape)).shape == (shape[0], 2)
    assert len(net.encoders) == 2 and net.fc.in_features == 2 * 32


def test_each_branch_sees_only_its_modality():
    torch.manual_seed(0)
    net = IntermediateFusionResNet(block_inplanes=[4, 8, 16, 32]).eval()
    x = torch.rand(1, 2, 32, 32)
    y = x.clone()
    y[:, 1] = torch.rand(1, 32, 32)  # change the PET channel only
    mr_features = [net.encoders[0](v[:, :1]) for v in (x, y)]
    assert torch.equal(mr_features[0], mr_features[1])
    assert not torch.allclose(net(x), net(y))


def test_wrong_channel_count_is_refused():
    with pytest.raises(ValueError, match="expected 2 input channels"):
        IntermediateFusionResNet(block_inplanes=[4, 8, 16, 32])(torch.rand(1, 3, 32, 32))
