"""What a `noclip train` run does, in numbers: the stages' steps, batches and learning rates
(`Plan`, recorded in the weights' config.json so the run can be told and repeated), the learning
rate's shape over a stage, and the few-steps plan CI trains to prove the stages work. The stages
themselves are tools/train.py's `Trainer`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Plan:
    seed: int = 0
    clips: int = 60          # buildings per level
    per_clip: int = 24       # frames per building
    ae_steps: int = 1500
    ae_batch: int = 16
    ae_crop: int = 80
    ae_lr: float = 2e-3
    unet_steps: int = 5000
    unet_batch: int = 16
    unet_lr: float = 1e-3
    img2img_bias: float = 0.7   # share of denoiser timesteps drawn from the range img2img plays
    play_like: float = 0.5      # share of noisy inputs made from the base latent, as the engine does
    change_steps: int = 1200    # the change decoder (model.Change), distilled from the autoencoder
    change_batch: int = 16
    change_lr: float = 2e-3
    adv_steps: int = 0          # then against a critic (tools/adversarial.py): sharp, not the mean
    adv_lr: float = 2e-4
    adv_weight: float = 0.1     # the critic's gradient against the regression's, at the last layer
    checkpoint_every: int = 200
    threads: int = 2            # torch threads (0: torch's default)


def warm_cosine(base: float, step: int, total: int) -> float:
    """A learning rate: 100 steps of warm-up, then a cosine down to a tenth of `base`."""
    warm = min(1.0, (step + 1) / 100)
    return base * warm * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(step / max(total, 1), 1.0))))


def small_plan(**overrides) -> Plan:
    """A few steps of everything: what CI runs to prove training works."""
    return replace(Plan(clips=1, per_clip=4, ae_steps=3, ae_batch=4, unet_steps=3, unet_batch=4,
                        change_steps=3, change_batch=4, checkpoint_every=2), **overrides)
