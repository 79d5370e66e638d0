"""One conditional in-painting GAN iteration (pix2pix style) for MONAI's ``GanTrainer``.

``GanTrainer``'s own iteration draws latent codes for an unconditional generator; CT-GAN's generator is
conditioned on the masked cube, so the trainer is given this step as its ``iteration_update``.
"""

from __future__ import annotations

from typing import Any

import torch
from monai.engines.utils import IterationEvents
from monai.utils import GanKeys

__all__ = ["InpaintingGANStep"]


def _last(out: Any) -> torch.Tensor:
    # MONAI's PatchDiscriminator returns every layer's output; the last is the patch logits
    return out[-1] if isinstance(out, (list, tuple)) else out


class InpaintingGANStep:
    """Discriminator then generator update on one batch of ``{"image": generator input, "label": real cube}``.

    Loss as in CT-GAN (pix2pix): the discriminator sees the cube with the mask and target-sphere channels
    and learns real vs generated (binary cross-entropy on PatchGAN logits); the generator minimises the
    adversarial loss plus ``l1_weight`` times the L1 distance to the real cube inside the mask.
    Voxels inside the target sphere (the injector's nodule) weigh ``1 + sphere_l1_weight`` in that L1:
    a nodule fills a few per cent of the box, so with a plain L1 the lung around it dominates and the
    in-painted nodules come out faint. With ``amp`` on CUDA, both updates run under ``torch.autocast``
    with one gradient scaler each.

    Returns (engine output): ``GanKeys`` REALS, FAKES, GLOSS, DLOSS, ``"l1"``, and ``"loss"`` (the
    generator loss again, the key MONAI's bundle tracking and ``StatsHandler`` defaults read), decollated
    into one dictionary per cube when the trainer decollates.
    """

    def __init__(self, l1_weight: float = 100.0, amp: bool = False, sphere_l1_weight: float = 0.0) -> None:
        self.l1_weight = float(l1_weight)
        self.sphere_l1_weight = float(sphere_l1_weight)
        self.amp = bool(amp) and torch.cuda.is_available()
        self.bce = torch.nn.BCEWithLogitsLoss()
        self.g_scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.d_scaler = torch.amp.GradScaler("cuda", enabled=self.amp)

    def __call__(self, engine: Any, batch: dict[str, torch.Tensor]) -> dict[str, Any] | list[dict[str, Any]]:
        device = engine.state.device
        x = batch["image"].to(device, non_blocking=engine.non_blocking)
        real = batch["label"].to(device, non_blocking=engine.non_blocking)
        cond = x[:, 1:3]
        mask = x[:, 1:2]
        l1_map = mask * (1 + self.sphere_l1_weight * x[:, 2:3])
        g, d = engine.g_network, engine.d_network
        g.train()
        d.train()
        autocast = torch.autocast(device_type=device.type if isinstance(device, torch.device) else "cuda",
                                  enabled=self.amp)  # fmt: skip
        with autocast:
            fake = g(x)
        # discriminator: reals and fakes in one forward (one DDP forward per backward)
        engine.d_optimizer.zero_grad(set_to_none=engine.optim_set_to_none)
        with autocast:
            both = torch.cat([torch.cat([real, cond], 1), torch.cat([fake.detach(), cond], 1)])
            logits = _last(d(both))
            n = real.shape[0]
            target = torch.cat([torch.ones_like(logits[:n]), torch.zeros_like(logits[n:])])
            d_loss = self.bce(logits.float(), target.float())
        self.d_scaler.scale(d_loss).backward()
        self.d_scaler.step(engine.d_optimizer)
        self.d_scaler.update()
        # generator: fool the discriminator and match the real cube inside the mask
        engine.g_optimizer.zero_grad(set_to_none=engine.optim_set_to_none)
        with autocast:
            logits = _last(d(torch.cat([fake, cond], 1)))
            adv = self.bce(logits.float(), torch.ones_like(logits, dtype=torch.float32))
            l1 = (torch.abs(fake.float() - real.float()) * l1_map).sum() / l1_map.sum().clamp_min(1)
            g_loss = adv + self.l1_weight * l1
        self.g_scaler.scale(g_loss).backward()
        self.g_scaler.step(engine.g_optimizer)
        self.g_scaler.update()
        engine.state.output = {
            GanKeys.REALS: real,
            GanKeys.FAKES: fake.detach(),
            GanKeys.GLOSS: g_loss.item(),
            GanKeys.DLOSS: d_loss.item(),
            "l1": l1.item(),
            "loss": g_loss.item(),
        }
        # as MONAI's own trainers do: the trainer's `decollate` (and postprocessing) hooks run on this event
        engine.fire_event(IterationEvents.MODEL_COMPLETED)
        return engine.state.output
