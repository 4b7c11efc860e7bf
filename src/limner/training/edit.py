"""limner-tiny-edit: an InstructPix2Pix model trained from limner-tiny on offline emoji edit triplets.

Why this recipe (Brooks et al., InstructPix2Pix, 2023, and diffusers' ``train_instruct_pix2pix.py``):

- The UNet starts from limner-tiny. Its ``conv_in`` is widened from 4 to 8 input channels; the new
  4, which read the input picture's latents, start at zero, so at step 0 the model is exactly
  limner-tiny and training only has to learn how to use the picture.
- A step denoises the edited picture's latents given the instruction and the unnoised latents of the
  input picture (the posterior mode, unscaled, as the pipeline computes them), concatenated along
  channels.
- Conditioning dropout: 5% of samples lose the text, 5% the picture, 5% both, so that the
  pipeline's two guidance scales (text and image) both have an unconditional branch to work from.
- The VAE and text encoder stay frozen (the paper's choice, and the shipped folder's text encoder
  and VAE are then limner-tiny's, byte for byte): every latent and every instruction embedding is
  computed once before the first step, so a step runs the UNet alone.

The run reuses limner's training pieces: the seeded batches, offset noise and Min-SNR weights of
the base recipe, the step loop with checkpoints and resume, EMA weights, and the folder export.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator
from diffusers.models.autoencoders.autoencoder_kl import AutoencoderKL
from diffusers.models.unets.unet_2d_condition import UNet2DConditionModel
from diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion_instruct_pix2pix import (
    StableDiffusionInstructPix2PixPipeline,
)
from diffusers.schedulers.scheduling_ddpm import DDPMScheduler
from safetensors.torch import load_file, save_file
from transformers import CLIPTextModel, CLIPTokenizer

from limner.training.architecture import SD_SCHEDULE, inference_scheduler
from limner.training.autoencoder import lr_factor
from limner.training.base import SavedModel
from limner.training.checkpoint import restore_training_state, training_state
from limner.training.data import CaptionedImages, batch_indices, step_generator
from limner.training.diffusion import encode_prompts, min_snr_weights, training_noise
from limner.training.edit_data import COLOUR_HUES, PHRASES, build_triplets, phrasings
from limner.training.ema import EMA
from limner.training.export import folder_size, save_pipeline
from limner.training.loop import LoopConfig, run_loop

log = logging.getLogger(__name__)

EDIT_CHANNELS = 8
LATENTS_FILE = "edit-latents.safetensors"


@dataclass(frozen=True)
class EditTrainConfig:
    data: Path
    base: Path
    out: Path
    work: Path
    steps: int = 5000
    batch_size: int = 32
    learning_rate: float = 3e-4
    warmup_steps: int = 200
    colours_per_image: int = 2
    condition_dropout: float = 0.05
    """Probability of each of: no text, no picture, neither (the paper's 5% each)."""
    noise_offset: float = 0.15
    min_snr_gamma: float = 5.0
    ema_decay: float = 0.999
    weight_decay: float = 0.01
    checkpoint_every: int = 250
    seed: int = 0
    resume: bool = True
    progress: bool = True
    limit: int | None = None
    """Use only the first N emoji of the dataset (tests, quick checks)."""


def widen_conv_in(unet: UNet2DConditionModel, channels: int = EDIT_CHANNELS) -> UNet2DConditionModel:
    """A copy of ``unet`` whose ``conv_in`` reads ``channels`` inputs; the new ones start at zero."""
    old = unet.conv_in
    if old.in_channels == channels:
        return unet
    config = dict(unet.config)
    config["in_channels"] = channels
    wide: UNet2DConditionModel = UNet2DConditionModel.from_config(config)
    state = unet.state_dict()
    weight = torch.zeros(old.out_channels, channels, *old.kernel_size, dtype=old.weight.dtype)
    weight[:, : old.in_channels] = old.weight.detach()
    state["conv_in.weight"] = weight
    wide.load_state_dict(state)
    return wide


@dataclass(frozen=True)
class EditLatents:
    """Everything a step reads, computed once: latents of inputs and outputs, instruction embeddings."""

    before: torch.Tensor
    """Posterior mode of each distinct input picture (unscaled, as the pipeline conditions on it)."""
    before_index: torch.Tensor
    """Per triplet, its row in ``before``."""
    after_mean: torch.Tensor
    after_std: torch.Tensor
    kinds: torch.Tensor
    """Per triplet, its edit kind's index in ``kind_names``."""
    kind_names: list[str]
    embeddings: torch.Tensor
    """Row 0: the empty prompt; then every phrasing of every kind."""
    phrase_rows: list[list[int]]
    """Per kind, the rows of its phrasings in ``embeddings``."""

    def __len__(self) -> int:
        return int(self.after_mean.shape[0])


@torch.no_grad()
def _encode(vae: AutoencoderKL, images: np.ndarray, batch: int = 128) -> tuple[torch.Tensor, torch.Tensor]:
    means: list[torch.Tensor] = []
    stds: list[torch.Tensor] = []
    for start in range(0, len(images), batch):
        pixels = torch.from_numpy(images[start : start + batch]).permute(0, 3, 1, 2).float() / 127.5 - 1.0
        dist = vae.encode(pixels).latent_dist
        means.append(dist.mean)
        stds.append(dist.std)
    return torch.cat(means), torch.cat(stds)


@torch.no_grad()
def prepare_latents(cfg: EditTrainConfig, model: SavedModel) -> EditLatents:
    """Build the triplets and encode them (or load the cached encoding from ``cfg.work``)."""
    kind_names = [*COLOUR_HUES, *PHRASES]
    texts = [""] + [p for kind in kind_names for p in phrasings(kind)]
    rows: list[list[int]] = []
    row = 1
    for kind in kind_names:
        count = len(phrasings(kind))
        rows.append(list(range(row, row + count)))
        row += count
    path = cfg.work / LATENTS_FILE
    if path.exists():
        saved = load_file(str(path))
    else:
        dataset = CaptionedImages.load(cfg.data)
        images = dataset.images.numpy()
        records = dataset.records
        if cfg.limit is not None:
            images, records = images[: cfg.limit], records[: cfg.limit]
        triplets = build_triplets(images, records, cfg.colours_per_image, cfg.seed)
        if not triplets:
            raise ValueError(f"{cfg.data}: no emoji left for training once the benchmark's are held out")
        inputs: dict[tuple[int, bool], int] = {}
        before_images: list[np.ndarray] = []
        before_index: list[int] = []
        for triplet in triplets:
            key = (triplet.source, triplet.kind == "cartoon")
            if key not in inputs:
                inputs[key] = len(before_images)
                before_images.append(triplet.before)
            before_index.append(inputs[key])
        log.info("edit data: %d triplets from %d input pictures; encoding", len(triplets), len(before_images))
        before_mean, _ = _encode(model.vae, np.stack(before_images))
        after_mean, after_std = _encode(model.vae, np.stack([t.after for t in triplets]))
        saved = {
            "before": before_mean.contiguous(),
            "before_index": torch.tensor(before_index),
            "after_mean": after_mean.contiguous(),
            "after_std": after_std.contiguous(),
            "kinds": torch.tensor([kind_names.index(t.kind) for t in triplets]),
        }
        cfg.work.mkdir(parents=True, exist_ok=True)
        save_file(saved, str(path))
        (cfg.work / "edit-triplets.json").write_text(
            json.dumps({"triplets": len(triplets), "inputs": len(before_images), "kinds": kind_names}),
            encoding="utf-8",
        )
    embeddings = encode_prompts(model.tokenizer, model.text_encoder.eval(), texts, torch.device("cpu"))
    return EditLatents(
        before=saved["before"],
        before_index=saved["before_index"],
        after_mean=saved["after_mean"],
        after_std=saved["after_std"],
        kinds=saved["kinds"],
        kind_names=kind_names,
        embeddings=embeddings,
        phrase_rows=rows,
    )


class EditTask:
    """Trains the 8-channel UNet to turn input-picture latents into edited latents, given instructions."""

    def __init__(
        self, unet: UNet2DConditionModel, data: EditLatents, scaling_factor: float, cfg: EditTrainConfig
    ) -> None:
        self.cfg = cfg
        self.data = data
        self.scaling_factor = scaling_factor
        self.accelerator = Accelerator(cpu=not torch.cuda.is_available())
        self.noise = DDPMScheduler(**SD_SCHEDULE)
        optimizer = torch.optim.AdamW(unet.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
        self.ema = EMA(unet, cfg.ema_decay)
        self.unet, self.optimizer = self.accelerator.prepare(unet, optimizer)

    def step(self, index: int) -> dict[str, float]:
        cfg, data = self.cfg, self.data
        for group in self.optimizer.param_groups:
            group["lr"] = cfg.learning_rate * lr_factor(index, cfg.warmup_steps, cfg.steps)
        device = self.accelerator.device
        idx = batch_indices(len(data), cfg.batch_size, cfg.seed, index)
        gen = step_generator(cfg.seed, index, stream=3)
        sample = torch.randn(data.after_mean[idx].shape, generator=gen)
        latents = (data.after_mean[idx] + data.after_std[idx] * sample) * self.scaling_factor
        noise = training_noise(latents.shape, gen, cfg.noise_offset)
        timesteps = torch.randint(0, self.noise.config.num_train_timesteps, (len(idx),), generator=gen)
        noisy = self.noise.add_noise(latents, noise, timesteps)
        # InstructPix2Pix's dropout: [0, p) no text, [p, 2p) neither, [2p, 3p) no picture.
        draw = torch.rand(len(idx), generator=gen)
        p = cfg.condition_dropout
        no_text = draw < 2 * p
        no_image = (draw >= p) & (draw < 3 * p)
        choice = torch.rand(len(idx), generator=gen)
        rows = [
            0 if drop else options[int(c * len(options)) % len(options)]
            for drop, c, options in zip(
                no_text.tolist(),
                choice.tolist(),
                (data.phrase_rows[k] for k in data.kinds[idx].tolist()),
                strict=True,
            )
        ]
        hidden = data.embeddings[torch.tensor(rows)]
        condition = data.before[data.before_index[idx]] * (~no_image).float()[:, None, None, None]
        unet = self.accelerator.unwrap_model(self.unet)
        model_input = torch.cat([noisy, condition], dim=1).to(device)
        pred = unet(model_input, timesteps.to(device), encoder_hidden_states=hidden.to(device)).sample
        per_sample = (pred - noise.to(device)).pow(2).flatten(1).mean(1)
        weights = min_snr_weights(self.noise.alphas_cumprod, timesteps, cfg.min_snr_gamma).to(device)
        loss = (per_sample * weights).mean()
        self.optimizer.zero_grad(set_to_none=True)
        self.accelerator.backward(loss)
        self.accelerator.clip_grad_norm_(self.unet.parameters(), 1.0)
        self.optimizer.step()
        self.ema.update(unet, index)
        return {"loss": loss.item(), "mse": per_sample.mean().item()}

    def ema_unet(self) -> UNet2DConditionModel:
        """A CPU copy of the UNet carrying the EMA weights."""
        import copy

        unet: UNet2DConditionModel = copy.deepcopy(self.accelerator.unwrap_model(self.unet)).cpu().eval()
        self.ema.copy_to(unet)
        return unet

    def state_dict(self) -> dict[str, Any]:
        return training_state("unet", self.accelerator.unwrap_model(self.unet), self.ema, self.optimizer)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        restore_training_state(state, "unet", self.accelerator.unwrap_model(self.unet), self.ema, self.optimizer)


def export_edit_model(
    folder: Path,
    unet: UNet2DConditionModel,
    vae: AutoencoderKL,
    text_encoder: CLIPTextModel,
    tokenizer: CLIPTokenizer,
) -> Path:
    """Write a ``StableDiffusionInstructPix2PixPipeline`` folder (UNet and VAE stored in float16)."""
    return save_pipeline(
        folder,
        unet=unet,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        scheduler=inference_scheduler(),
        pipeline_class=StableDiffusionInstructPix2PixPipeline,
    )


def train_edit(cfg: EditTrainConfig) -> Path:
    """The whole edit recipe; calling it again resumes from ``cfg.work``. Returns the exported folder."""
    if cfg.base.resolve() == cfg.out.resolve():
        raise ValueError("--out must differ from --base: exports replace the output folder")
    model = SavedModel.load(cfg.base)
    channels = model.unet.config["in_channels"]
    if channels != 4:
        raise ValueError(f"{cfg.base} is not a text-to-image base model (its UNet reads {channels} channels, not 4)")
    data = prepare_latents(cfg, model)
    torch.manual_seed(cfg.seed + 1)
    task = EditTask(widen_conv_in(model.unet), data, float(model.vae.config["scaling_factor"]), cfg)

    def export(step: int) -> None:
        export_edit_model(cfg.out, task.ema_unet(), model.vae, model.text_encoder, model.tokenizer)
        log.info("exported EMA weights of step %d to %s (%.1f MB)", step, cfg.out, folder_size(cfg.out) / 1e6)

    loop = LoopConfig(
        steps=cfg.steps,
        work_dir=cfg.work / "edit",
        checkpoint_every=cfg.checkpoint_every,
        resume=cfg.resume,
        description="edit unet",
        progress=cfg.progress,
    )
    run_loop(task, loop, on_checkpoint=export)
    if not (cfg.out / "model_index.json").exists():
        export(cfg.steps)
    return cfg.out
