"""GradientClipping: the global gradient norm is capped before the optimiser step; a non-finite step is skipped."""

from __future__ import annotations

import pytest
import torch
from ignite.engine import Events
from monai.engines import SupervisedTrainer

from lungcad_transforms.handlers import GradientClipping


def _trainer(loss_scale: float) -> tuple[SupervisedTrainer, torch.nn.Module]:
    torch.manual_seed(0)
    net = torch.nn.Linear(4, 1)
    data = [{"image": torch.randn(8, 4), "label": torch.randn(8, 1)}]

    def loss(pred, target):
        return loss_scale * torch.nn.functional.mse_loss(pred, target)

    trainer = SupervisedTrainer(
        device=torch.device("cpu"), max_epochs=1, train_data_loader=data, network=net,
        optimizer=torch.optim.SGD(net.parameters(), lr=0.0), loss_function=loss,
    )  # fmt: skip
    return trainer, net


def test_gradient_norm_is_capped_before_the_step():
    trainer, net = _trainer(1e4)
    seen = []
    GradientClipping(max_norm=2.0).attach(trainer)

    @trainer.on(Events.ITERATION_COMPLETED)
    def _record(engine):
        seen.append(float(torch.norm(torch.stack([p.grad.norm() for p in net.parameters()]))))

    trainer.run()
    assert seen and seen[0] == pytest.approx(2.0, rel=1e-4)


def test_non_finite_gradients_skip_the_step():
    trainer, net = _trainer(float("inf"))
    trainer.optimizer.param_groups[0]["lr"] = 0.1
    before = [p.detach().clone() for p in net.parameters()]
    clip = GradientClipping(max_norm=12.0)
    clip.attach(trainer)
    trainer.run()
    assert clip.skipped == 1
    for old, new in zip(before, net.parameters(), strict=True):
        assert torch.equal(old, new.detach())


def test_max_norm_must_be_positive():
    with pytest.raises(ValueError, match="max_norm must be positive"):
        GradientClipping(max_norm=0.0)
