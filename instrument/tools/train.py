"""`noclip train`: reproduce the builtin model's weights from scratch.

Three stages, each resumable from its checkpoint: render the data set (cached as .npz), train the
autoencoder on random crops (it is fully convolutional, so crops teach it what full frames would,
five times cheaper), then freeze it, encode the set once and train the denoiser: given a frame's
clean latent (its base) and a noisy latent, it learns to answer the frame richened by fields of that
very noise (tools/rich.py), in one step, on a cosine schedule; last, a change decoder learns what
decoding the denoiser's answer and the base would change in the picture, a tenth of the work of
decoding both (model.Change). Every batch is drawn from a generator seeded by (seed, stage, step),
so a resumed run sees the same batches as an unbroken one. `--keep DIR` keeps the autoencoder and
denoiser of the weights in DIR and trains only the change decoder for them.

Nothing written here is ever half a file: the data set, each checkpoint and the exported weights
are written beside their place, fsynced and renamed over it (files.py), so a crash, a kill or a
full disk mid-write leaves the previous file whole.
"""

from __future__ import annotations

import json
import math
import platform
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F
from tqdm import tqdm

from ..files import replace_atomically, write_atomically
from ..generate.builtin.model import Change, Config, Decoder, Encoder, UNet, channels_last, cosine_alphas
from ..generate.model import Schedule
from .plan import Plan, warm_cosine
from .rich import richen


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be resumed; str() is `file: what is wrong`."""


CL = torch.channels_last   # measured: 1.1-6x faster convs on CPU, forward and backward


def batch_tensor(images: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)
    return x.contiguous(memory_format=CL)


class Trainer:
    def __init__(self, work: Path, out: Path, plan: Plan, config: Config | None = None, device: str = "cpu",
                 progress: bool = True) -> None:
        self.work, self.out, self.plan, self.config = Path(work), Path(out), plan, config or Config()
        self.device, self.progress = torch.device(device), progress
        self.work.mkdir(parents=True, exist_ok=True)
        self.log: dict[str, list] = {"ae": [], "unet": [], "change": []}
        self.keep: Path | None = None  # a --keep run's folder of kept weights
        self.started = time.time()
        self.elapsed = 0.0

    # -- data ----------------------------------------------------------------------------------

    def data(self) -> tuple[np.ndarray, np.ndarray]:
        p = self.plan
        path = self.work / f"data-{p.seed}-{p.clips}x{p.per_clip}-{self.config.width}x{self.config.height}.npz"
        if not path.is_file():
            from ..render.gl import headless_context
            from .data import render_set

            ctx = headless_context()
            frames = render_set(ctx, (self.config.width, self.config.height), self.plan.clips,
                                self.plan.per_clip, seed=self.plan.seed, progress=self.progress)
            ctx.release()
            with replace_atomically(path) as tmp, open(tmp, "wb") as f:
                np.savez(f, images=frames.images, levels=frames.levels)
        with np.load(path) as z:
            return z["images"], z["levels"]

    # -- checkpoints ---------------------------------------------------------------------------

    def _ckpt(self, stage: str) -> Path:
        return self.work / f"{stage}.pt"

    def _save(self, stage: str, step: int, modules: dict, opt: torch.optim.Optimizer) -> None:
        self.elapsed += time.time() - self.started
        self.started = time.time()
        state = {"step": step, "opt": opt.state_dict(), "log": self.log, "elapsed": self.elapsed,
                 "plan": self.plan.__dict__, **{k: m.state_dict() for k, m in modules.items()}}
        with replace_atomically(self._ckpt(stage)) as tmp:
            torch.save(state, tmp)

    def _resume(self, stage: str, modules: dict, opt: torch.optim.Optimizer) -> int:
        path = self._ckpt(stage)
        if not path.is_file():
            return 0
        try:
            state = torch.load(path, map_location=self.device, weights_only=True)  # tensors and plain data only
            for k, m in modules.items():
                m.load_state_dict(state[k])
            opt.load_state_dict(state["opt"])
            self.log, self.elapsed = state["log"], state["elapsed"]
            return int(state["step"])
        except Exception as exc:  # damaged, from another plan or model version
            raise CheckpointError(f"{path}: not a checkpoint this run can resume ({type(exc).__name__}: "
                                  f"{str(exc)[:200]}); --fresh starts over") from None

    # -- stage 1: autoencoder ------------------------------------------------------------------

    def train_ae(self, images: np.ndarray) -> tuple[Encoder, Decoder]:
        p, c = self.plan, self.config
        torch.manual_seed(p.seed)
        enc, dec = channels_last(Encoder(c), self.device), channels_last(Decoder(c), self.device)
        opt = torch.optim.AdamW([*enc.parameters(), *dec.parameters()], lr=p.ae_lr, weight_decay=1e-4)
        modules = {"enc": enc, "dec": dec}
        start = self._resume("ae", modules, opt)
        n, h, w, _ = images.shape
        k = p.ae_crop
        bar = tqdm(range(start, p.ae_steps), desc="autoencoder", disable=not self.progress,
                   initial=start, total=p.ae_steps)
        for step in bar:
            rng = np.random.default_rng([p.seed, 1, step])
            idx = rng.integers(0, n, p.ae_batch)
            ys = rng.integers(0, (h - k) // 4 + 1, p.ae_batch) * 4
            xs = rng.integers(0, (w - k) // 4 + 1, p.ae_batch) * 4
            crops = np.stack([images[i, y:y + k, x:x + k] for i, y, x in zip(idx, ys, xs, strict=True)])
            flip = rng.random(p.ae_batch) < 0.5
            crops[flip] = crops[flip, :, ::-1]
            x = batch_tensor(crops).to(self.device)
            g = torch.Generator().manual_seed(p.seed * 1_000_003 + step)
            z = enc(x)
            # noise on the latent: the decoder must tolerate what a denoiser leaves behind
            zn = z + 0.1 * z.detach().std() * torch.randn(z.shape, generator=g).to(self.device)
            y = dec(zn)
            mse = F.mse_loss(y, x)
            loss = mse + 0.5 * F.l1_loss(y, x) + 1e-4 * z.pow(2).mean()
            for group in opt.param_groups:
                group["lr"] = warm_cosine(p.ae_lr, step, p.ae_steps)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            psnr = 10 * math.log10(4.0 / max(mse.item(), 1e-10))
            self.log["ae"].append([step, loss.item(), psnr])
            bar.set_postfix(psnr=f"{psnr:.1f}")
            if (step + 1) % p.checkpoint_every == 0 or step + 1 == p.ae_steps:
                self._save("ae", step + 1, modules, opt)
        return enc.eval().requires_grad_(False), dec.eval().requires_grad_(False)

    @torch.no_grad()
    def encode_all(self, enc: Encoder, images: np.ndarray) -> torch.Tensor:
        out = []
        for i in range(0, len(images), 64):
            out.append(enc(batch_tensor(images[i:i + 64]).to(self.device)).cpu())
        return torch.cat(out)

    # -- stage 2: denoiser ---------------------------------------------------------------------

    def train_unet(self, latents: torch.Tensor, levels: np.ndarray, images: np.ndarray, enc: Encoder,
                   shift: torch.Tensor, scale: torch.Tensor,
                   init: dict[str, torch.Tensor] | None = None) -> tuple[UNet, UNet]:
        """The denoiser. Each sample: a frame's base latent z_b, noise eps, the frame richened by eps
        and encoded (z_r, the answer), a timestep; the noisy input is made from z_b as the stream
        engine makes it (`play_like` of the time) or from z_r as plain diffusion does, and the loss is
        the squared error of the clean latent the output implies (one step plays exactly that).
        `init`: weights to start from (a fine-tune, tools/restyle.py) instead of random ones."""
        p, c = self.plan, self.config
        torch.manual_seed(p.seed + 1)
        unet = UNet(c)
        if init is not None:
            unet.load_state_dict(init)
        unet = channels_last(unet, self.device)
        ema = channels_last(UNet(c), self.device)
        ema.load_state_dict(unet.state_dict())
        ema.requires_grad_(False)
        opt = torch.optim.AdamW(unet.parameters(), lr=p.unet_lr, weight_decay=1e-4)
        modules = {"unet": unet, "ema": ema}
        start = self._resume("unet", modules, opt)
        schedule = Schedule(cosine_alphas(c.T))
        n = len(latents)
        labels = torch.from_numpy(levels)
        norm = (shift.view(1, -1, 1, 1).to(self.device), scale.view(1, -1, 1, 1).to(self.device))
        bar = tqdm(range(start, p.unet_steps), desc="denoiser", disable=not self.progress,
                   initial=start, total=p.unet_steps)
        for step in bar:
            rng = np.random.default_rng([p.seed, 2, step])
            idx_np = rng.integers(0, n, p.unet_batch)
            idx = torch.from_numpy(idx_np)
            flip = rng.random(p.unet_batch) < 0.5
            zb = latents[idx].float().to(self.device)
            zb[torch.from_numpy(flip)] = zb[torch.from_numpy(flip)].flip(-1)
            frames = images[idx_np].copy()
            frames[flip] = frames[flip, :, ::-1]
            g = torch.Generator().manual_seed(p.seed * 1_000_033 + step)
            eps = torch.randn(zb.shape, generator=g).to(self.device)
            with torch.no_grad():
                zr = (enc(richen(batch_tensor(frames).to(self.device), eps).contiguous(memory_format=CL))
                      - norm[0]) * norm[1]
            # timesteps: where img2img plays (strength 0.15-0.85 of the shifted schedule), and some anywhere
            played = rng.integers(int(0.5 * c.T), int(0.97 * c.T), p.unet_batch)
            uniform = rng.integers(0, c.T, p.unet_batch)
            t = torch.from_numpy(np.where(rng.random(p.unet_batch) < p.img2img_bias, played, uniform))
            cls = labels[idx].clone()
            cls[torch.from_numpy(rng.random(p.unet_batch) < 0.1)] = c.classes   # unconditional
            t = t.to(self.device)
            like = torch.from_numpy(rng.random(p.unet_batch) < p.play_like).to(self.device).view(-1, 1, 1, 1)
            xt = schedule.noise(torch.where(like, zb, zr), eps, t).contiguous(memory_format=CL)
            out = unet(xt, t, unet.classes(cls.to(self.device)), zb.contiguous(memory_format=CL))
            loss = F.mse_loss(schedule.x0(xt, out, t, c.prediction, zb), zr)
            for group in opt.param_groups:
                group["lr"] = warm_cosine(p.unet_lr, step, p.unet_steps)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
            opt.step()
            decay = min(0.999, (1 + step) / (10 + step))
            with torch.no_grad():
                for pe, pu in zip(ema.parameters(), unet.parameters(), strict=True):
                    pe.lerp_(pu, 1 - decay)
            self.log["unet"].append([step, loss.item()])
            bar.set_postfix(loss=f"{loss.item():.4f}")
            if (step + 1) % p.checkpoint_every == 0 or step + 1 == p.unet_steps:
                self._save("unet", step + 1, modules, opt)
        return unet, ema

    # -- stage 3: change decoder ---------------------------------------------------------------

    @torch.no_grad()
    def change_batch(self, stream: tuple[int, int], step: int, latents: torch.Tensor, images: np.ndarray,
                     enc: Encoder, dec: Decoder, norm: tuple[torch.Tensor, torch.Tensor],
                     whole: int = 0) -> tuple[torch.Tensor, ...]:
        """A change decoder's batch, drawn from (seed, stream[0], step) and noise seeded by stream[1]:
        (frames, their richened pictures, base latents z_b, latents x between z_b and the richened
        picture's and somewhat past it (the first `whole` exactly the richened one's), and the
        target D(x) - D(z_b))."""
        p = self.plan
        rng = np.random.default_rng([p.seed, stream[0], step])
        idx_np = rng.integers(0, len(latents), p.change_batch)
        zb = latents[torch.from_numpy(idx_np)].float().to(self.device)
        g = torch.Generator().manual_seed(p.seed * stream[1] + step)
        eps = torch.randn(zb.shape, generator=g).to(self.device)
        amount = rng.uniform(0.0, 1.25, (p.change_batch, 1, 1, 1))
        amount[:whole] = 1.0
        frames = batch_tensor(images[idx_np]).to(self.device)
        real = richen(frames, eps)
        zr = (enc(real.contiguous(memory_format=CL)) - norm[0]) * norm[1]
        x = zb + torch.from_numpy(amount).float().to(self.device) * (zr - zb)
        both = dec((torch.cat([x, zb]) / norm[1] + norm[0]).contiguous(memory_format=CL))
        return frames, real, zb, x, both[:len(x)] - both[len(x):]

    def train_change(self, latents: torch.Tensor, images: np.ndarray, enc: Encoder, dec: Decoder,
                     shift: torch.Tensor, scale: torch.Tensor,
                     init: dict[str, torch.Tensor] | None = None) -> Change:
        """The change decoder, distilled from the autoencoder: for a frame's base latent z_b and a
        latent x between it and the latent of the frame richened by fresh noise (where the one-step
        denoiser answers, and somewhat past it), it learns D(x) - D(z_b), the picture's change.
        `init`: weights to start from (a fine-tune, tools/restyle.py) instead of random ones."""
        p, c = self.plan, self.config
        torch.manual_seed(p.seed + 2)
        net = Change(c)
        if init is not None:
            net.load_state_dict(init)
        net = channels_last(net, self.device)
        opt = torch.optim.AdamW(net.parameters(), lr=p.change_lr, weight_decay=1e-4)
        modules = {"change": net}
        start = self._resume("change", modules, opt)
        norm = (shift.view(1, -1, 1, 1).to(self.device), scale.view(1, -1, 1, 1).to(self.device))
        bar = tqdm(range(start, p.change_steps), desc="change decoder", disable=not self.progress,
                   initial=start, total=p.change_steps)
        for step in bar:
            _, _, zb, x, target = self.change_batch((3, 1_000_037), step, latents, images, enc, dec, norm)
            out = net(x.contiguous(memory_format=CL), zb.contiguous(memory_format=CL))
            loss = F.mse_loss(out, target) + 0.25 * F.l1_loss(out, target)
            for group in opt.param_groups:
                group["lr"] = warm_cosine(p.change_lr, step, p.change_steps)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            # the share of the change it gets wrong (0: exact; 1: as good as adding nothing)
            rel = ((out - target).pow(2).mean() / target.pow(2).mean().clamp(min=1e-12)).sqrt().item()
            self.log["change"].append([step, loss.item(), rel])
            bar.set_postfix(rel=f"{rel:.3f}")
            if (step + 1) % p.checkpoint_every == 0 or step + 1 == p.change_steps:
                self._save("change", step + 1, modules, opt)
        return net.eval().requires_grad_(False)

    # -- the whole run -------------------------------------------------------------------------

    def run(self, keep: Path | None = None) -> Path:
        """Every stage; or with `keep` (a folder of weights: the shipped ones) its autoencoder,
        denoiser and latent normalisation kept as they are, and only the change decoder trained."""
        if self.plan.threads:
            torch.set_num_threads(self.plan.threads)
        images, levels = self.data()
        self.keep = keep
        if keep is None:
            enc, dec = self.train_ae(images)
            raw = self.encode_all(enc, images)
            shift, scale = raw.mean(dim=(0, 2, 3)), 1.0 / raw.std(dim=(0, 2, 3))
        else:
            enc, dec, ema, shift, scale = self.kept(keep)
            raw = self.encode_all(enc, images)
        latents = ((raw - shift[None, :, None, None]) * scale[None, :, None, None]).half()
        if keep is None:
            _, ema = self.train_unet(latents, levels, images, enc, shift, scale)
        change = self.train_change(latents, images, enc, dec, shift, scale) if self.config.change else None
        if change is not None and self.plan.adv_steps:
            from .adversarial import post_train

            change = post_train(self, change, latents, images, enc, dec, shift, scale)
        return self.export(enc, dec, ema, shift, scale, change)

    def kept(self, folder: Path) -> tuple[Encoder, Decoder, UNet, torch.Tensor, torch.Tensor]:
        """The autoencoder, denoiser and latent normalisation of the weights in `folder` (of this
        run's architecture, change decoder aside)."""
        from safetensors.torch import load_file

        from ..generate.builtin import config_of, read_config

        # int8 aside too: whether the dream holds in int8 is measured again for a new change decoder
        theirs = replace(config_of(read_config(folder)), change=self.config.change, int8=self.config.int8)
        if theirs != self.config:
            raise CheckpointError(f"{folder}: weights of another architecture than this run's ({theirs})")
        state = load_file(str(folder / "model.safetensors"))
        enc, dec, unet = Encoder(self.config), Decoder(self.config), UNet(self.config)
        for prefix, module in (("enc.", enc), ("dec.", dec), ("unet.", unet)):
            module.load_state_dict({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})
            channels_last(module, self.device).eval().requires_grad_(False)
        return enc, dec, unet, state["latent_shift"], state["latent_scale"]

    def export(self, enc: Encoder, dec: Decoder, unet: UNet, shift: torch.Tensor, scale: torch.Tensor,
               change: Change | None = None) -> Path:
        from safetensors.torch import save_file

        self.out.mkdir(parents=True, exist_ok=True)
        state = {f"enc.{k}": v for k, v in enc.state_dict().items()}
        state |= {f"dec.{k}": v for k, v in dec.state_dict().items()}
        state |= {f"unet.{k}": v for k, v in unet.state_dict().items()}
        if change is not None:
            state |= {f"change.{k}": v for k, v in change.state_dict().items()}
        state |= {"latent_shift": shift, "latent_scale": scale}
        with replace_atomically(self.out / "model.safetensors") as tmp:
            save_file({k: v.detach().float().cpu().contiguous() for k, v in state.items()}, str(tmp))
        self.elapsed += time.time() - self.started
        self.started = time.time()
        meta = {"config": self.config.to_dict(), "schedule": "cosine", "plan": self.plan.__dict__,
                "training": {"wall_seconds": round(self.elapsed, 1), "device": str(self.device),
                             "torch_threads": torch.get_num_threads(), "machine": platform.platform(),
                             "processor": platform.processor() or platform.machine(),
                             "frames": self.plan.clips * self.plan.per_clip * 2}}
        meta, log = (meta, self.log) if self.keep is None else with_kept(self.keep, meta, self.log)
        write_atomically(self.out / "config.json", json.dumps(meta, indent=2) + "\n")
        write_atomically(self.out / "losses.json", json.dumps(log) + "\n")
        return self.out


def with_kept(folder: Path, meta: dict, log: dict[str, list]) -> tuple[dict, dict[str, list]]:
    """A `--keep` run's config and loss log: the kept weights' plan, training figures and losses for
    the stages it kept, this run's for the change decoder."""
    from ..generate.builtin import read_config

    theirs = read_config(folder)
    keys = ("change_steps", "change_batch", "change_lr", "adv_steps", "adv_lr", "adv_weight")
    plan = {**theirs["plan"], **{k: meta["plan"][k] for k in keys}}
    training = {**theirs["training"], "change_wall_seconds": meta["training"]["wall_seconds"]}
    losses = json.loads((folder / "losses.json").read_text()) if (folder / "losses.json").is_file() else {}
    ours = {k: log[k] for k in ("change", "adversarial") if k in log}
    return {**meta, "plan": plan, "training": training}, {**losses, **ours}
