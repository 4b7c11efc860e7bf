"""limner-tiny-control: a canny ControlNet for limner-tiny, trained on the emoji set's own edges.

Why this recipe (Zhang et al., ControlNet, 2023, and diffusers' ``train_controlnet.py``):

- The ControlNet starts as a copy of limner-tiny's UNet encoder (``ControlNetModel.from_unet``) with
  its output convolutions at zero, so at step 0 it changes nothing and training only has to learn
  how to use the edges. The UNet, VAE and text encoder stay frozen: the shipped model is limner-tiny
  plus this small folder, loaded with ``--control-model``.
- The control image of an emoji is its Canny edge map (OpenCV, thresholds 100/200), computed by the
  same preprocessor users run (:func:`limner.imaging.control_preprocess.canny_edges`), so training
  and use see the same kind of picture.
- Half of the captions are dropped to empty (the paper's 50%): the ControlNet must read the
  structure from the edges, not from the prompt.
- A fixed 4% of the emoji (by Unicode code) are never trained on: :func:`held_out` marks them, and
  the benchmark and the shipped test control only them.

The run reuses limner's training pieces: seeded batches, offset noise and Min-SNR weights of the
base recipe, the step loop with checkpoints and resume, and EMA weights.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from accelerate import Accelerator
from diffusers import ControlNetModel
from diffusers.models.unets.unet_2d_condition import UNet2DConditionModel
from diffusers.schedulers.scheduling_ddpm import DDPMScheduler
from PIL import Image
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import CLIPTextModel

from limner.imaging.control_preprocess import canny_edges
from limner.training.architecture import SD_SCHEDULE
from limner.training.autoencoder import encode_latents, lr_factor
from limner.training.base import SavedModel
from limner.training.checkpoint import restore_training_state, training_state
from limner.training.data import CaptionedImages, batch_indices, pick_captions, step_generator
from limner.training.diffusion import PromptIds, min_snr_weights, training_noise
from limner.training.ema import EMA
from limner.training.loop import LoopConfig, run_loop

log = logging.getLogger(__name__)

LATENTS_FILE = "control-latents.safetensors"
HELD_OUT_EVERY = 25


def held_out(record: dict[str, Any]) -> bool:
    """Whether an emoji (both of its art styles) belongs to the fixed benchmark set (never trained on)."""
    digest = hashlib.sha1(str(record.get("unified", record.get("name", ""))).encode()).digest()
    return int.from_bytes(digest[:4], "big") % HELD_OUT_EVERY == 0


def emoji_edges(image: np.ndarray) -> np.ndarray:
    """The control image of an emoji picture (uint8 HxWx3): its Canny edges, 0 or 255, as 3 channels."""
    edges = canny_edges(Image.fromarray(image))
    return np.repeat(edges[:, :, None], 3, axis=2)


@dataclass(frozen=True)
class ControlTrainConfig:
    data: Path
    base: Path
    out: Path
    work: Path
    steps: int = 3000
    batch_size: int = 16
    learning_rate: float = 2e-4
    warmup_steps: int = 100
    caption_dropout: float = 0.5
    noise_offset: float = 0.15
    min_snr_gamma: float = 5.0
    ema_decay: float = 0.995
    weight_decay: float = 0.01
    checkpoint_every: int = 250
    seed: int = 0
    resume: bool = True
    progress: bool = True
    limit: int | None = None
    """Use only the first N emoji of the dataset (tests, quick checks)."""


@dataclass(frozen=True)
class ControlData:
    """What a step reads, computed once: latents, edge maps and captions of the training emoji."""

    mean: torch.Tensor
    std: torch.Tensor
    edges: torch.Tensor
    """uint8 [N, 3, H, W]: the Canny edges of each picture."""
    captions: list[list[str]]

    def __len__(self) -> int:
        return int(self.mean.shape[0])


@torch.no_grad()
def prepare_data(cfg: ControlTrainConfig, model: SavedModel) -> ControlData:
    """The training emoji (held-out ones left out), encoded once and cached in ``cfg.work``."""
    dataset = CaptionedImages.load(cfg.data)
    keep = [i for i, record in enumerate(dataset.records) if not held_out(record)]
    held = len(dataset.records) - len(keep)
    if cfg.limit is not None:
        keep = keep[: cfg.limit]
    captions = [dataset.captions[i] for i in keep]
    path = cfg.work / LATENTS_FILE
    if path.exists():
        saved = load_file(str(path))
    else:
        images = dataset.images[keep]
        mean, std = encode_latents(model.vae, images)
        edges = torch.from_numpy(np.stack([emoji_edges(image) for image in images.numpy()])).permute(0, 3, 1, 2)
        saved = {"mean": mean.contiguous(), "std": std.contiguous(), "edges": edges.contiguous()}
        cfg.work.mkdir(parents=True, exist_ok=True)
        save_file(saved, str(path))
    log.info("control data: %d emoji (%d held out)", len(keep), held)
    return ControlData(mean=saved["mean"], std=saved["std"], edges=saved["edges"], captions=captions)


class ControlTask:
    """Trains a ControlNet to steer the frozen limner-tiny UNet with edge maps."""

    def __init__(
        self,
        controlnet: ControlNetModel,
        model: SavedModel,
        data: ControlData,
        cfg: ControlTrainConfig,
    ) -> None:
        self.cfg = cfg
        self.data = data
        self.scaling_factor = float(model.vae.config["scaling_factor"])
        self.accelerator = Accelerator(cpu=not torch.cuda.is_available())
        self.noise = DDPMScheduler(**SD_SCHEDULE)
        self.prompt_ids = PromptIds(model.tokenizer)
        device = self.accelerator.device
        self.unet: UNet2DConditionModel = model.unet.to(device).eval().requires_grad_(False)
        self.text_encoder: CLIPTextModel = model.text_encoder.to(device).eval().requires_grad_(False)
        net = cast(nn.Module, controlnet)  # diffusers' model classes are untyped for mypy
        optimizer = torch.optim.AdamW(net.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
        self.ema = EMA(net, cfg.ema_decay)
        self.controlnet, self.optimizer = self.accelerator.prepare(controlnet, optimizer)

    def step(self, index: int) -> dict[str, float]:
        cfg, data = self.cfg, self.data
        for group in self.optimizer.param_groups:
            group["lr"] = cfg.learning_rate * lr_factor(index, cfg.warmup_steps, cfg.steps)
        device = self.accelerator.device
        idx = batch_indices(len(data), cfg.batch_size, cfg.seed, index)
        gen = step_generator(cfg.seed, index, stream=5)
        sample = torch.randn(data.mean[idx].shape, generator=gen)
        latents = (data.mean[idx] + data.std[idx] * sample) * self.scaling_factor
        noise = training_noise(latents.shape, gen, cfg.noise_offset)
        timesteps = torch.randint(0, self.noise.config.num_train_timesteps, (len(idx),), generator=gen)
        noisy = self.noise.add_noise(latents, noise, timesteps).to(device)
        prompts = pick_captions(data.captions, idx, gen, cfg.caption_dropout)
        with torch.no_grad():
            hidden = self.text_encoder(self.prompt_ids(prompts).to(device))[0]
        condition = data.edges[idx].float().div(255.0).to(device)
        controlnet = self.accelerator.unwrap_model(self.controlnet)
        down, mid = controlnet(noisy, timesteps.to(device), encoder_hidden_states=hidden,
                               controlnet_cond=condition, return_dict=False)  # fmt: skip
        pred = self.unet(noisy, timesteps.to(device), encoder_hidden_states=hidden,
                         down_block_additional_residuals=down, mid_block_additional_residual=mid).sample  # fmt: skip
        per_sample = (pred - noise.to(device)).pow(2).flatten(1).mean(1)
        weights = min_snr_weights(self.noise.alphas_cumprod, timesteps, cfg.min_snr_gamma).to(device)
        loss = (per_sample * weights).mean()
        self.optimizer.zero_grad(set_to_none=True)
        self.accelerator.backward(loss)
        self.accelerator.clip_grad_norm_(self.controlnet.parameters(), 1.0)
        self.optimizer.step()
        self.ema.update(controlnet, index)
        return {"loss": loss.item(), "mse": per_sample.mean().item()}

    def ema_controlnet(self) -> ControlNetModel:
        """A CPU copy of the ControlNet carrying the EMA weights."""
        import copy

        controlnet: ControlNetModel = copy.deepcopy(self.accelerator.unwrap_model(self.controlnet)).cpu().eval()
        self.ema.copy_to(cast(nn.Module, controlnet))
        return controlnet

    def state_dict(self) -> dict[str, Any]:
        return training_state("controlnet", self.accelerator.unwrap_model(self.controlnet), self.ema, self.optimizer)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        restore_training_state(
            state, "controlnet", self.accelerator.unwrap_model(self.controlnet), self.ema, self.optimizer
        )


def new_controlnet(unet: UNet2DConditionModel, latent_scale: int) -> ControlNetModel:
    """A ControlNet copied from ``unet``; its edge encoder shrinks pictures by the VAE's ``latent_scale``."""
    steps = int(np.log2(latent_scale))
    channels = tuple(16 * 2**i for i in range(steps + 1))  # one conv block per halving, as SD's (16, 32, 96, 256)
    controlnet: ControlNetModel = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=channels)
    return controlnet


def export_controlnet(folder: Path, controlnet: ControlNetModel) -> Path:
    """Write the ControlNet as a diffusers folder (float16 safetensors: half the size, same pictures)."""
    folder.mkdir(parents=True, exist_ok=True)
    import copy

    half = copy.deepcopy(controlnet)
    cast(nn.Module, half).half()  # in place
    half.save_pretrained(str(folder), safe_serialization=True)  # type: ignore[attr-defined]
    return folder


def train_control(cfg: ControlTrainConfig) -> Path:
    """The whole recipe; calling it again resumes from ``cfg.work``. Returns the exported folder."""
    model = SavedModel.load(cfg.base)
    data = prepare_data(cfg, model)
    latent_scale = 2 ** (len(model.vae.config["block_out_channels"]) - 1)
    torch.manual_seed(cfg.seed + 1)
    task = ControlTask(new_controlnet(model.unet, latent_scale), model, data, cfg)

    def export(step: int) -> None:
        export_controlnet(cfg.out, task.ema_controlnet())
        log.info("exported EMA weights of step %d to %s", step, cfg.out)

    loop = LoopConfig(
        steps=cfg.steps,
        work_dir=cfg.work / "control",
        checkpoint_every=cfg.checkpoint_every,
        resume=cfg.resume,
        description="controlnet",
        progress=cfg.progress,
    )
    run_loop(task, loop, on_checkpoint=export)
    if not (cfg.out / "config.json").exists():
        export(cfg.steps)
    return cfg.out
