"""A CT-GAN bundle copy with tiny untrained generators: enough to exercise the edit plumbing quickly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch


@pytest.fixture(scope="session")
def tiny_gan_bundle(tmp_path_factory) -> Path:
    """``models/{injector,remover}.pt`` of a 4-8-16 generator (seeded random weights) and their network keys."""
    from lungcad_transforms.networks.nets.ctgan import CTGANGenerator

    root = tmp_path_factory.mktemp("tiny_gan_bundle")
    (root / "models").mkdir()
    for i, task in enumerate(("injector", "remover")):
        torch.manual_seed(i)
        net = CTGANGenerator(channels=(4, 8, 16), strides=(2, 2))
        torch.save({"generator": net.state_dict()}, root / "models" / f"{task}.pt")
        settings = {"generator_channels": [4, 8, 16], "generator_strides": [2, 2]}
        (root / "models" / f"{task}_network.json").write_text(json.dumps(settings))
    return root
