"""VAE training with a colour (low-frequency) loss term.

Why the extra term: a small autoencoder trained on per-pixel error alone gets the edges roughly
right and the colours wrong (measured: yellow came back salmon at 15 dB). Emoji are flat colour
fields, so the loss adds the error of 8x-downsampled images, which is the colour of each region,
weighted up; an L1 term keeps flat fields crisp. The KL weight is tiny, as in Stable Diffusion:
enough to keep latents well-behaved for diffusion, not enough to blur.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from accelerate import Accelerator
from diffusers.models.autoencoders.autoencoder_kl import AutoencoderKL

from limner.training.checkpoint import restore_training_state, training_state
from limner.training.data import batch_indices, step_generator
from limner.training.ema import EMA


@dataclass(frozen=True)
class VaeTrainConfig:
    batch_size: int = 32
    learning_rate: float = 1e-3
    warmup_steps: int = 100
    total_steps: int = 3000
    crop: int = 32
    kl_weight: float = 1e-6
    lowfreq_weight: float = 4.0
    ema_decay: float = 0.995
    seed: int = 0


def lr_factor(step: int, warmup: int, total: int) -> float:
    """Linear warm-up, then cosine decay to 10%: high rates for speed, a calm finish for quality."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.1 + 0.9 * 0.5 * (1.0 + torch.cos(torch.tensor(progress * torch.pi)).item())


def vae_loss(
    recon: torch.Tensor, target: torch.Tensor, kl: torch.Tensor, cfg: VaeTrainConfig
) -> tuple[torch.Tensor, dict[str, float]]:
    l1 = (recon - target).abs().mean()
    mse = F.mse_loss(recon, target)
    low = F.mse_loss(F.avg_pool2d(recon, 8), F.avg_pool2d(target, 8))
    loss = l1 + mse + cfg.lowfreq_weight * low + cfg.kl_weight * kl.mean()
    return loss, {"loss": loss.item(), "mse": mse.item(), "lowfreq": low.item()}


class VaeTask:
    """Trains ``vae`` on uint8 NHWC ``images``; the EMA copy is the one to use afterwards."""

    def __init__(self, vae: AutoencoderKL, images: torch.Tensor, cfg: VaeTrainConfig, accelerator: Accelerator) -> None:
        self.cfg = cfg
        self.images = images
        self.accelerator = accelerator
        self.ema = EMA(vae, cfg.ema_decay)
        optimizer = torch.optim.AdamW(vae.parameters(), lr=cfg.learning_rate, weight_decay=0.0)
        self.vae, self.optimizer = accelerator.prepare(vae, optimizer)

    def _batch(self, step: int) -> torch.Tensor:
        idx = batch_indices(len(self.images), self.cfg.batch_size, self.cfg.seed, step)
        pixels = self.images[idx].permute(0, 3, 1, 2).float() / 127.5 - 1.0
        size = pixels.shape[-1]
        if self.cfg.crop and self.cfg.crop < size:
            gen = step_generator(self.cfg.seed, step, stream=1)
            top, left = torch.randint(0, size - self.cfg.crop + 1, (2,), generator=gen).tolist()
            pixels = pixels[..., top : top + self.cfg.crop, left : left + self.cfg.crop]
        return pixels.to(self.accelerator.device)

    def step(self, index: int) -> dict[str, float]:
        for group in self.optimizer.param_groups:
            group["lr"] = self.cfg.learning_rate * lr_factor(index, self.cfg.warmup_steps, self.cfg.total_steps)
        target = self._batch(index)
        vae = self.accelerator.unwrap_model(self.vae)
        posterior = vae.encode(target).latent_dist
        gen = step_generator(self.cfg.seed, index, stream=2)
        noise = torch.randn(posterior.mean.shape, generator=gen).to(posterior.mean.device)
        latents = posterior.mean + posterior.std * noise
        recon = vae.decode(latents).sample
        loss, metrics = vae_loss(recon, target, posterior.kl(), self.cfg)
        self.optimizer.zero_grad(set_to_none=True)
        self.accelerator.backward(loss)
        self.accelerator.clip_grad_norm_(self.vae.parameters(), 1.0)
        self.optimizer.step()
        self.ema.update(vae, index)
        return metrics

    def state_dict(self) -> dict[str, Any]:
        return training_state("vae", self.accelerator.unwrap_model(self.vae), self.ema, self.optimizer)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        restore_training_state(state, "vae", self.accelerator.unwrap_model(self.vae), self.ema, self.optimizer)


@torch.no_grad()
def reconstruction_psnr(vae: AutoencoderKL, images: torch.Tensor, batch_size: int = 64) -> float:
    """Mean PSNR (dB, on the 0..255 scale) of encode-mode -> decode over uint8 NHWC ``images``."""
    scores: list[torch.Tensor] = []
    for start in range(0, len(images), batch_size):
        pixels = images[start : start + batch_size].permute(0, 3, 1, 2).float() / 127.5 - 1.0
        recon = vae.decode(vae.encode(pixels).latent_dist.mode()).sample.clamp(-1, 1)
        mse = ((recon - pixels) * 127.5).pow(2).flatten(1).mean(1).clamp_min(1e-10)
        scores.append(10 * torch.log10(255.0**2 / mse))
    return float(torch.cat(scores).mean())


@torch.no_grad()
def centre_latents(vae: AutoencoderKL, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Fold a per-channel shift and scale into ``quant_conv``/``post_quant_conv``; return (shift, scale).

    Why: a freshly trained autoencoder's latent channels have very different means and spreads
    (measured on limner-tiny's first VAE: means -1.0..1.2, stds 0.3..0.9), and one global
    ``scaling_factor`` cannot fix offsets, so the UNet spends its capacity learning them at high
    noise. Both convolutions are 1x1, so the fold is exact: the encoder now emits ``(z - m) / s``
    (its log-variance shifted by ``-2 log s``) and the decoder undoes it before decoding. The model
    stays a standard ``AutoencoderKL`` with ``scaling_factor`` 1, loadable by every pipeline.
    """
    means, _ = encode_latents(vae, images)
    shift = means.mean(dim=(0, 2, 3))
    scale = means.std(dim=(0, 2, 3)).clamp_min(1e-6)
    channels = shift.numel()
    quant, post = vae.quant_conv, vae.post_quant_conv
    if quant is None or post is None or quant.bias is None or post.bias is None:
        raise ValueError("centre_latents needs a VAE with biased quant_conv and post_quant_conv (use_quant_conv=True)")
    quant.weight[:channels] /= scale.view(-1, 1, 1, 1)
    quant.bias[:channels] = (quant.bias[:channels] - shift) / scale
    quant.bias[channels:] -= 2.0 * scale.log()
    post.bias += post.weight[:, :, 0, 0] @ shift
    post.weight *= scale.view(1, -1, 1, 1)
    vae.register_to_config(scaling_factor=1.0)
    return shift, scale


@torch.no_grad()
def encode_latents(vae: AutoencoderKL, images: torch.Tensor, batch_size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior mean and std of every image, so diffusion training never runs the VAE."""
    means: list[torch.Tensor] = []
    stds: list[torch.Tensor] = []
    for start in range(0, len(images), batch_size):
        pixels = images[start : start + batch_size].permute(0, 3, 1, 2).float() / 127.5 - 1.0
        dist = vae.encode(pixels).latent_dist
        means.append(dist.mean)
        stds.append(dist.std)
    return torch.cat(means), torch.cat(stds)
