"""Small 3-D CNN: shapes, gradients, the scale it reads, its pooling head."""

from __future__ import annotations

import pytest
import torch

from lungcad_transforms.networks.nets.small3dcnn import Small3DCNN

pytestmark = pytest.mark.usefixtures("single_torch_thread")

TINY_MGI = dict(patch_size=(12, 12, 8), features=(4, 6, 8, 8, 12), fc_features=(16, 8), dropout=0.0)


def test_small3dcnn_shape_gradients_and_scale_selection(nodule_blob_patches):
    net = Small3DCNN(patch_size=(12, 12, 8), input_scale=1, channels=(4, 8, 8), fc_features=(16, 8))
    x, labels = nodule_blob_patches(4, seed=3, shape=(12, 12, 8))
    logits = net(x)
    assert logits.shape == (4, 1)
    torch.nn.BCEWithLogitsLoss()(logits, labels).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.conv1.parameters())
    net.eval()
    with torch.no_grad():
        other_scales_changed = x.clone()
        other_scales_changed[:, [0, 2]] = torch.rand_like(other_scales_changed[:, [0, 2]])
        # only the selected scale is read
        assert torch.equal(net(x), net(other_scales_changed))


def test_small3dcnn_global_average_pooling_head():
    net = Small3DCNN(patch_size=(12, 12, 8), channels=(4, 8, 8), fc_features=(16, 8), head="gap")
    assert net(torch.rand(2, 3, 12, 12, 8)).shape == (2, 1)
    assert net.classifier[2].in_features == 8  # one value per channel reaches the fully connected layers
    with pytest.raises(ValueError, match="head"):
        Small3DCNN(head="max")


def test_small3dcnn_reads_all_channels_without_input_scale():
    net = Small3DCNN(patch_size=(12, 12, 8), in_channels=3, input_scale=None, channels=(4, 8, 8))
    assert net(torch.rand(2, 3, 12, 12, 8)).shape == (2, 1)
    assert net.conv1.conv.in_channels == 3
