"""The conditional GAN iteration: its losses, the sphere-weighted L1 and the keys MONAI's handlers read."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from monai.utils import GanKeys

from lungcad_transforms.apps.ctgan import InpaintingGANStep
from lungcad_transforms.apps.ctgan.cubes import centre_mask, nodule_sphere


class _ZeroGenerator(torch.nn.Module):
    """Outputs a learnable constant (0 at start): the L1 before the update is known exactly."""

    def __init__(self) -> None:
        super().__init__()
        self.bias = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :1] * 0 + self.bias


def _engine() -> SimpleNamespace:
    g = _ZeroGenerator()
    d = torch.nn.Conv3d(3, 1, 4, stride=4)
    return SimpleNamespace(
        state=SimpleNamespace(device=torch.device("cpu"), output=None), non_blocking=False, optim_set_to_none=True,
        fire_event=lambda event: None,
        g_network=g, d_network=d, g_optimizer=torch.optim.SGD(g.parameters(), lr=0.1),
        d_optimizer=torch.optim.SGD(d.parameters(), lr=0.1),
    )  # fmt: skip


def _batch() -> dict[str, torch.Tensor]:
    """A real cube that is 1 inside an 8 mm sphere and 0 elsewhere, with its masked input."""
    mask, sphere = torch.as_tensor(centre_mask()), torch.as_tensor(nodule_sphere(8.0))
    real = sphere[None, None].clone()
    image = torch.stack([real[0, 0] * (1 - mask), mask, sphere])[None]
    return {"image": image, "label": real}


@pytest.mark.parametrize("sphere_l1_weight", [0.0, 4.0])
def test_l1_weighs_the_target_sphere_and_the_output_carries_loss(sphere_l1_weight: float):
    batch = _batch()
    n_sphere, n_mask = float(batch["image"][0, 2].sum()), float(batch["image"][0, 1].sum())
    engine = _engine()
    out = InpaintingGANStep(l1_weight=10.0, sphere_l1_weight=sphere_l1_weight)(engine, batch)
    # the zero output misses the real cube by 1 exactly on the sphere
    w = 1 + sphere_l1_weight
    assert out["l1"] == pytest.approx(w * n_sphere / (n_mask + (w - 1) * n_sphere), rel=1e-5)
    assert out["loss"] == out[GanKeys.GLOSS] and out[GanKeys.GLOSS] > 10.0 * out["l1"]  # + adversarial
    assert out[GanKeys.DLOSS] > 0 and out[GanKeys.FAKES].shape == batch["label"].shape
    assert engine.g_network.bias.item() > 0  # the generator step moved the output towards the nodule


def test_removal_inputs_have_no_sphere_so_the_weight_changes_nothing():
    batch = _batch()
    batch["image"][:, 2] = 0
    plain = InpaintingGANStep(sphere_l1_weight=0.0)(_engine(), batch)["l1"]
    weighted = InpaintingGANStep(sphere_l1_weight=9.0)(_engine(), batch)["l1"]
    assert weighted == pytest.approx(plain)
