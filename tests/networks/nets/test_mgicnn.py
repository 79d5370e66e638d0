"""MGI-CNN: shapes, gradient flow, scale order, learning, bad input."""

from __future__ import annotations

import pytest
import torch
from tiny_nets import settle_batch_norm

from lungcad_transforms.networks.nets.mgicnn import MGICNN
from lungcad_transforms.networks.nets.small3dcnn import Small3DCNN

pytestmark = pytest.mark.usefixtures("single_torch_thread")

TINY_MGI = dict(patch_size=(12, 12, 8), features=(4, 6, 8, 8, 12), fc_features=(16, 8), dropout=0.0)


@pytest.mark.parametrize("merge", ["sum", "concat"])
def test_mgicnn_output_shape_and_gradients_reach_every_layer(merge, nodule_blob_patches):
    net = MGICNN(merge=merge, **TINY_MGI)
    x, labels = nodule_blob_patches(4, seed=0, shape=(12, 12, 8))
    logits = net(x)
    assert logits.shape == (4, 1)
    torch.nn.BCEWithLogitsLoss()(logits, labels).backward()
    for name, param in net.named_parameters():
        assert param.grad is not None, f"no gradient reached {name}"
    # both streams and the merge block take part
    for prefix in ("zoom_in.stage1", "zoom_out.stage1", "zoom_in.stage3", "final_block", "classifier"):
        grads = [p.grad.abs().sum() for n, p in net.named_parameters() if n.startswith(prefix)]
        assert sum(grads) > 0, prefix


def test_mgicnn_integrates_scales_in_opposite_orders(nodule_blob_patches):
    torch.manual_seed(0)  # fixed weights: the check must not depend on which tests ran before
    net = MGICNN(**TINY_MGI).eval()
    x, _ = nodule_blob_patches(2, seed=1, shape=(12, 12, 8))
    with torch.no_grad():
        base = net(x)
        swapped = net(x[:, [2, 1, 0]])  # finest and widest scale exchanged
    # the streams are not symmetric in the scales, so exchanging them changes the answer
    # at initialisation the difference is small (~1e-5) but far above float32 round-off (~1e-7)
    assert (base - swapped).abs().max() > 1e-6


def test_mgicnn_learns_to_separate_blobs_from_lung(nodule_blob_patches):
    torch.manual_seed(0)
    net = MGICNN(**TINY_MGI)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    x, labels = nodule_blob_patches(16, seed=2, shape=(12, 12, 8))
    loss_fn = torch.nn.BCEWithLogitsLoss()
    first = loss_fn(net(x), labels).item()
    for _ in range(25):
        opt.zero_grad()
        loss = loss_fn(net(x), labels)
        loss.backward()
        opt.step()
    assert loss.item() < 0.5 * first
    settle_batch_norm(net, x)
    with torch.no_grad():
        probs = torch.sigmoid(net(x))
    assert ((probs > 0.5).float() == labels).float().mean() == 1.0


@pytest.mark.parametrize(
    "net, bad",
    [
        (MGICNN(**TINY_MGI), torch.rand(2, 1, 12, 12, 8)),  # one scale instead of three
        (MGICNN(**TINY_MGI), torch.rand(2, 3, 16, 16, 16)),  # another grid than built for
        (MGICNN(**TINY_MGI), torch.rand(3, 12, 12, 8)),  # no batch axis
        (Small3DCNN(patch_size=(12, 12, 8), input_scale=2), torch.rand(2, 2, 12, 12, 8)),  # no third scale
        (Small3DCNN(patch_size=(12, 12, 8), input_scale=0), torch.rand(2, 3, 10, 12, 8)),
    ],
)
def test_networks_refuse_patches_of_the_wrong_shape(net, bad):
    with pytest.raises(ValueError):
        net(bad)


def test_mgicnn_refuses_bad_settings():
    with pytest.raises(ValueError, match="5 widths"):
        MGICNN(features=(8, 16, 24))
    with pytest.raises(ValueError, match="merge"):
        MGICNN(merge="max")
