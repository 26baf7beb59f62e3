"""Stage 4 of `noclip train`: adversarial post-training of the change decoder.

The change decoder is trained first by regression on what the autoencoder's decoder would change
(stage 3). A latent a quarter the frame's size does not fix the fine texture of a stain's tide line,
so regression learns the mean of what it may decode to, which is soft: the dream added about the
scene's own detail and no more (0.99x at 256x192, where the teacher's pictures carry 1.25x). Here a
conditional patch critic learns to tell the teacher's pictures (the frame richened by the very
noise, tools/rich.py) from the frame plus the decoded change, and the decoder learns to fool it: one
sharp answer instead of the mean. It is the recipe behind SD-Turbo's adversarial distillation, on
the decoder only; the regression loss stays beside it, so the change stays the latent's (where a
stain is, is the latent's; how sharp its rim is, the critic's), weighted so that neither gradient
drowns the other (the balance of taming-transformers' VQGAN). The critic is not shipped.

The critic's strided layers see the phases of the decoder's latent grid differently, and a decoder
left to it learns a faint lattice at that grid (session 14: detail 1.08x, all of it the pattern).
So the critic sees each batch at a random offset within a cell, and the regression holds the
decoder to no change that repeats in every cell.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm import tqdm

from ..generate.builtin.model import Change, Decoder, Encoder, channels_last

if TYPE_CHECKING:
    from .train import Trainer


class Critic(nn.Module):
    """A patch critic on (frame, picture): each score sees about 22x22 pixels, the size of a tide
    line's turn, and the frame beside the picture, so it judges the change, not the room."""

    def __init__(self, ch: int = 32) -> None:
        super().__init__()
        sn = nn.utils.parametrizations.spectral_norm  # a critic that cannot run away from the decoder
        self.net = nn.Sequential(
            sn(nn.Conv2d(6, ch, 4, 2, 1)), nn.LeakyReLU(0.2),
            sn(nn.Conv2d(ch, 2 * ch, 4, 2, 1)), nn.LeakyReLU(0.2),
            sn(nn.Conv2d(2 * ch, 2 * ch, 3, 1, 1)), nn.LeakyReLU(0.2),
            sn(nn.Conv2d(2 * ch, 1, 3, 1, 1)))

    def forward(self, frame: torch.Tensor, picture: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([frame, picture], 1))


GRID_WEIGHT = 20.0  # how hard the decoder is held to no pattern locked to its latent grid


def shifted(cell: int, *pictures: torch.Tensor) -> list[torch.Tensor]:
    """The pictures cropped by one random offset under `cell` pixels (the decoder's pixels per
    latent cell): the critic's strided first layers then see every phase of the latent grid alike,
    so a pattern locked to that grid fools it no better than any other (without it the decoder learnt
    a faint 4-pixel lattice: the dream bench's grid figure 7.0, the scene's 1.1)."""
    dy, dx = (int(v) for v in torch.randint(0, cell, (2,)))
    h, w = pictures[0].shape[-2:]
    return [x[..., dy:h - cell + dy, dx:w - cell + dx] for x in pictures]


def grid_pattern(change: torch.Tensor, cell: int) -> torch.Tensor:
    """The power of what a change does alike in every latent cell, phase by phase (cell x cell means
    over the picture, less their mean): what a decoder's grid artifact is made of."""
    b, c, h, w = change.shape
    phases = change.reshape(b, c, h // cell, cell, w // cell, cell).mean(dim=(2, 4))
    return (phases - phases.mean(dim=(2, 3), keepdim=True)).pow(2).mean()


def balance(rec: torch.Tensor, adv: torch.Tensor, layer: torch.Tensor, most: float = 1e4) -> torch.Tensor:
    """The adversarial term's weight that gives it the regression's gradient norm at the decoder's
    last layer (VQGAN's adaptive weight), held constant for the step."""
    g_rec = torch.autograd.grad(rec, layer, retain_graph=True)[0].norm()
    g_adv = torch.autograd.grad(adv, layer, retain_graph=True)[0].norm()
    return (g_rec / (g_adv + 1e-4)).clamp(0.0, most).detach()


def post_train(trainer: Trainer, net: Change, latents: torch.Tensor, images: np.ndarray, enc: Encoder,
               dec: Decoder, shift: torch.Tensor, scale: torch.Tensor) -> Change:
    """`plan.adv_steps` steps of the change decoder `net` (stage 3's) against a critic. Half of each
    batch is the frame's fully richened latent, where the teacher's picture is the real sample; the
    whole batch keeps stage 3's regression target."""
    from .plan import warm_cosine
    from .train import CL

    p, device, cell = trainer.plan, trainer.device, trainer.config.factor
    torch.manual_seed(p.seed + 3)
    net = net.train().requires_grad_(True)
    critic = channels_last(Critic(), device)
    opt_g = torch.optim.Adam(net.parameters(), lr=p.adv_lr, betas=(0.5, 0.9))
    opt_d = torch.optim.Adam(critic.parameters(), lr=p.adv_lr, betas=(0.5, 0.9))
    modules = {"change": net, "critic": critic, "opt_d": opt_d}
    start = trainer._resume("adversarial", modules, opt_g)
    norm = (shift.view(1, -1, 1, 1).to(device), scale.view(1, -1, 1, 1).to(device))
    half = p.change_batch // 2
    bar = tqdm(range(start, p.adv_steps), desc="adversarial", disable=not trainer.progress, initial=start,
               total=p.adv_steps)
    for step in bar:
        # half of it the teacher's own picture's latent, where the critic judges the change
        frames, real, zb, x, target = trainer.change_batch((4, 1_000_039), step, latents, images, enc, dec,
                                                           norm, whole=half)
        lr = warm_cosine(p.adv_lr, step, p.adv_steps)
        for opt in (opt_g, opt_d):
            for group in opt.param_groups:
                group["lr"] = lr
        out = net(x.contiguous(memory_format=CL), zb.contiguous(memory_format=CL))
        fake = frames[:half] + out[:half]

        # the critic: hinge loss, the teacher's pictures real, the decoder's fake
        seen, genuine, faked = shifted(cell, frames[:half], real[:half], fake)
        d_loss = (F.relu(1.0 - critic(seen, genuine)).mean()
                  + F.relu(1.0 + critic(seen, faked.detach())).mean())
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()

        # the decoder: stage 3's regression, and the critic fooled, balanced at its last layer
        rec = (F.mse_loss(out, target) + 0.25 * F.l1_loss(out, target)
               + GRID_WEIGHT * grid_pattern(out - target, cell))
        adv = -critic(seen, faked).mean()
        weight = p.adv_weight * balance(rec, adv, net.out.weight)
        loss = rec + weight * adv
        opt_g.zero_grad(set_to_none=True)
        loss.backward()
        opt_g.step()
        rel = ((out - target).pow(2).mean() / target.pow(2).mean().clamp(min=1e-12)).sqrt().item()
        trainer.log.setdefault("adversarial", []).append(
            [step, rec.item(), adv.item(), d_loss.item(), float(weight), rel])
        bar.set_postfix(rel=f"{rel:.3f}", d=f"{d_loss.item():.2f}")
        if (step + 1) % p.checkpoint_every == 0 or step + 1 == p.adv_steps:
            trainer._save("adversarial", step + 1, modules, opt_g)
    return net.eval().requires_grad_(False)
