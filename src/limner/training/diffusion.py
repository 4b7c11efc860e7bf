"""Joint text-encoder + UNet training on cached VAE latents (epsilon prediction).

Why these choices, for a from-scratch model that must learn to follow text in about an hour of
CPU: latents are cached (posterior mean and std per image, sampled each step), so a step never runs
the VAE; the UNet and the text encoder train together, and the text encoder may be frozen (the
fine-tuning case); 10% of captions are dropped to empty, which classifier-free guidance needs;
Min-SNR-gamma loss weights stop the easy low-noise timesteps from dominating, which speeds up
convergence several-fold in the literature; EMA weights are what get exported.

Why offset noise (a per-channel constant added to the training noise): the SD schedule never
reaches zero signal, and on 16x16 latents the mean of a latent channel still shows through the
noise at the last timestep about as strongly as the mean of the sampler's starting noise. A model
trained without the offset learns to read each image's overall colour from the noise, so at
sampling time the seed, not the prompt, picks the colour ("blue heart" came out purple for seeds
whose starting noise leaned that way, and blue once that noise's mean was removed). With the
offset, the channel means of the noisy input are mostly noise, and the colour has to come from the
text (Guttenberg's offset-noise fix, ``--noise_offset`` in diffusers' training scripts).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from accelerate import Accelerator
from diffusers.models.unets.unet_2d_condition import UNet2DConditionModel
from diffusers.schedulers.scheduling_ddpm import DDPMScheduler
from torch import nn
from transformers import CLIPTextModel, CLIPTokenizer

from limner.training.autoencoder import lr_factor
from limner.training.checkpoint import restore_training_state, training_state
from limner.training.data import batch_indices, pick_captions, step_generator
from limner.training.ema import EMA


@dataclass(frozen=True)
class DiffusionTrainConfig:
    batch_size: int = 64
    learning_rate: float = 6e-4
    warmup_steps: int = 200
    total_steps: int = 10000
    caption_dropout: float = 0.1
    min_snr_gamma: float = 5.0
    ema_decay: float = 0.999
    weight_decay: float = 0.01
    train_text_encoder: bool = True
    noise_offset: float = 0.0
    seed: int = 0


def min_snr_weights(alphas_cumprod: torch.Tensor, timesteps: torch.Tensor, gamma: float) -> torch.Tensor:
    """Per-sample loss weights ``min(SNR, gamma) / SNR`` for epsilon prediction."""
    alpha = alphas_cumprod[timesteps]
    snr = alpha / (1.0 - alpha)
    return torch.clamp(snr, max=gamma) / snr


def training_noise(shape: torch.Size, generator: torch.Generator, offset: float) -> torch.Tensor:
    """Gaussian noise plus, when ``offset`` > 0, a per-sample, per-channel constant of that std."""
    noise = torch.randn(shape, generator=generator)
    if offset:
        noise = noise + offset * torch.randn((*shape[:2], 1, 1), generator=generator)
    return noise


def encode_prompts(
    tokenizer: CLIPTokenizer, text_encoder: CLIPTextModel, prompts: list[str], device: torch.device
) -> torch.Tensor:
    """Token embeddings exactly as the SD pipeline computes them (padded to max length, no mask)."""
    ids = tokenizer(
        prompts, padding="max_length", max_length=tokenizer.model_max_length, truncation=True, return_tensors="pt"
    ).input_ids.to(device)
    hidden: torch.Tensor = text_encoder(ids)[0]
    return hidden


class PromptIds:
    """Token ids per prompt, computed once: the captions repeat every pass, tokenizing does not need to.

    Why: CLIP's tokenizer is pure Python, and on a GPU tokenizing a batch costs more than the tiny
    model's whole training step. Ids are identical to ``encode_prompts``'s (padded to max length).
    """

    def __init__(self, tokenizer: CLIPTokenizer) -> None:
        self.tokenizer = tokenizer
        self.known: dict[str, torch.Tensor] = {}

    def __call__(self, prompts: list[str]) -> torch.Tensor:
        missing = sorted({p for p in prompts if p not in self.known})
        if missing:
            ids = self.tokenizer(
                missing,
                padding="max_length",
                max_length=self.tokenizer.model_max_length,
                truncation=True,
                return_tensors="pt",
            ).input_ids
            self.known.update(zip(missing, ids, strict=True))
        return torch.stack([self.known[p] for p in prompts])


class DiffusionTask:
    """Trains ``unet`` (and ``text_encoder`` unless frozen) to denoise cached latents given captions."""

    def __init__(
        self,
        unet: UNet2DConditionModel,
        text_encoder: CLIPTextModel,
        tokenizer: CLIPTokenizer,
        latent_mean: torch.Tensor,
        latent_std: torch.Tensor,
        scaling_factor: float,
        captions: list[list[str]],
        cfg: DiffusionTrainConfig,
        accelerator: Accelerator,
    ) -> None:
        self.cfg = cfg
        self.accelerator = accelerator
        self.tokenizer = tokenizer
        self.prompt_ids = PromptIds(tokenizer)
        self.latent_mean = latent_mean
        self.latent_std = latent_std
        self.scaling_factor = scaling_factor
        self.captions = captions
        self.noise = DDPMScheduler(**_schedule_of(unet))
        self.models = nn.ModuleDict({"unet": unet, "text_encoder": text_encoder})
        text_encoder.requires_grad_(cfg.train_text_encoder)
        params = [p for p in self.models.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
        self.ema = EMA(self.models, cfg.ema_decay)
        self.models, self.optimizer = accelerator.prepare(self.models, optimizer)

    def step(self, index: int) -> dict[str, float]:
        cfg = self.cfg
        for group in self.optimizer.param_groups:
            group["lr"] = cfg.learning_rate * lr_factor(index, cfg.warmup_steps, cfg.total_steps)
        device = self.accelerator.device
        idx = batch_indices(len(self.latent_mean), cfg.batch_size, cfg.seed, index)
        gen = step_generator(cfg.seed, index, stream=3)
        sample_noise = torch.randn(self.latent_mean[idx].shape, generator=gen)
        latents = (self.latent_mean[idx] + self.latent_std[idx] * sample_noise) * self.scaling_factor
        noise = training_noise(latents.shape, gen, cfg.noise_offset)
        timesteps = torch.randint(0, self.noise.config.num_train_timesteps, (len(idx),), generator=gen)
        prompts = pick_captions(self.captions, idx, gen, cfg.caption_dropout)
        noisy = self.noise.add_noise(latents, noise, timesteps)
        models = self.accelerator.unwrap_model(self.models)
        hidden: torch.Tensor = models["text_encoder"](self.prompt_ids(prompts).to(device))[0]
        pred = models["unet"](noisy.to(device), timesteps.to(device), encoder_hidden_states=hidden).sample
        per_sample = (pred - noise.to(device)).pow(2).flatten(1).mean(1)
        weights = min_snr_weights(self.noise.alphas_cumprod, timesteps, cfg.min_snr_gamma).to(device)
        loss = (per_sample * weights).mean()
        self.optimizer.zero_grad(set_to_none=True)
        self.accelerator.backward(loss)
        self.accelerator.clip_grad_norm_(self.models.parameters(), 1.0)
        self.optimizer.step()
        self.ema.update(models, index)
        return {"loss": loss.item(), "mse": per_sample.mean().item()}

    def ema_models(self) -> nn.ModuleDict:
        """A copy of the models carrying the EMA weights (training weights untouched)."""
        import copy

        models = copy.deepcopy(self.accelerator.unwrap_model(self.models)).cpu().eval()
        self.ema.copy_to(models)
        return models

    def state_dict(self) -> dict[str, Any]:
        return training_state("models", self.accelerator.unwrap_model(self.models), self.ema, self.optimizer)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        restore_training_state(state, "models", self.accelerator.unwrap_model(self.models), self.ema, self.optimizer)


def _schedule_of(unet: UNet2DConditionModel) -> dict[str, Any]:
    from limner.training.architecture import SD_SCHEDULE

    return dict(SD_SCHEDULE)
