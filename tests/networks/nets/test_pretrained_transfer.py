"""build_transfer_classifier: the bundle's one call for a backbone, a checkpoint file and frozen stages."""

from __future__ import annotations

import pytest
import torch

from lungcad_transforms.errors import InputError
from lungcad_transforms.networks.nets.pretrained import build_transfer_classifier

TINY = {"channels": [4, 8, 8], "blocks": [1, 1]}


def test_checkpoint_is_loaded_and_first_stages_frozen(tmp_path, single_torch_thread):
    donor = build_transfer_classifier("ressenet", in_channels=3, net_kwargs=TINY)
    path = tmp_path / "donor.pt"
    torch.save(donor.state_dict(), path)
    net = build_transfer_classifier("ressenet", in_channels=3, pretrained=path, freeze=2, net_kwargs=TINY)
    for name, value in donor.state_dict().items():
        assert torch.equal(net.state_dict()[name], value), name
    frozen = {n for n, p in net.named_parameters() if not p.requires_grad}
    assert frozen and all(n.startswith(("features.0.", "features.1.")) for n in frozen)
    assert all(p.requires_grad for n, p in net.named_parameters() if n.startswith(("features.2.", "fc.")))
    # frozen batch-norm statistics stay put through a training step
    before = net.features[1][0].conv1.adn.N.running_mean.clone()
    net.train()
    net(torch.rand(4, 3, 32, 32)).sum().backward()
    assert torch.equal(net.features[1][0].conv1.adn.N.running_mean, before)


def test_freezing_random_weights_and_unusable_files_are_refused(tmp_path):
    with pytest.raises(ValueError, match="needs pretrained weights"):
        build_transfer_classifier("ressenet", in_channels=3, freeze=1, net_kwargs=TINY)
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="bad.pt"):
        build_transfer_classifier("ressenet", in_channels=3, pretrained=bad, net_kwargs=TINY)
    unrelated = tmp_path / "unrelated.pt"
    torch.save({"other.weight": torch.zeros(3)}, unrelated)
    with pytest.raises(InputError, match="no tensor matches"):
        build_transfer_classifier("ressenet", in_channels=3, pretrained=unrelated, net_kwargs=TINY)
