"""Gradient-norm clipping between a MONAI trainer's backward pass and its optimiser step."""

from __future__ import annotations

import logging
from typing import Any

import torch

__all__ = ["GradientClipping"]

logger = logging.getLogger(__name__)


class GradientClipping:
    """Clip the global gradient norm of the trainer's network before every optimiser step.

    nnU-Net trains its U-Nets with SGD (momentum 0.99, Nesterov) and clips the gradient norm at 12; without
    the clip, one batch with a large loss (a big nodule in a hard patch) can throw such an optimiser off
    for good (the loss turns NaN and stays there). Neither MONAI nor ignite has a handler for this: MONAI's
    ``SupervisedTrainer`` fires ``IterationEvents.BACKWARD_COMPLETED`` after ``backward()`` and before
    ``optimizer.step()``, which is where this one clips. Under AMP the gradients are unscaled first
    (``GradScaler.unscale_``, as PyTorch documents for clipping), so the norm is in true units. A step whose
    gradients are not finite is skipped (gradients zeroed) and logged, so it cannot poison the weights.

    Args:
        max_norm: the largest global L2 norm of the gradients (nnU-Net: 12).

    Examples:
        In a bundle config's ``train#handlers``::

            {"_target_": "lungcad_transforms.handlers.GradientClipping", "max_norm": 12.0}
    """

    def __init__(self, max_norm: float = 12.0) -> None:
        if not max_norm > 0:
            raise ValueError(f"max_norm must be positive, got {max_norm}")
        self.max_norm = float(max_norm)
        self.skipped = 0

    def attach(self, engine: Any) -> None:
        from monai.engines.utils import IterationEvents

        engine.add_event_handler(IterationEvents.BACKWARD_COMPLETED, self)

    def __call__(self, engine: Any) -> None:
        scaler = getattr(engine, "scaler", None)
        if getattr(engine, "amp", False) and scaler is not None:
            scaler.unscale_(engine.optimizer)
        params = [p for p in engine.network.parameters() if p.grad is not None]
        if not params:
            return
        norm = torch.nn.utils.clip_grad_norm_(params, self.max_norm)
        if not torch.isfinite(norm):
            self.skipped += 1
            logger.warning(
                "iteration %d: gradient norm is %s: step skipped (%d so far)",
                engine.state.iteration, float(norm), self.skipped,
            )  # fmt: skip
            for p in params:
                p.grad.zero_()
