"""DreamBooth training: a LoRA (or the full UNet) learns a subject from a few pictures.

The steps read top to bottom: load the base model, encode the subject pictures to latents and the
prompts to embeddings once (the VAE and text encoder stay frozen), generate and cache class
pictures for prior preservation, then run the shared seeded step loop (checkpoints, resume) and
export the adapter as safetensors. Every random draw of step ``i`` comes from ``(seed, i)``, so a
resumed run ends with exactly the weights of an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator
from diffusers import DDPMScheduler, StableDiffusionPipeline
from peft import LoraConfig, get_peft_model_state_dict, set_peft_model_state_dict
from PIL import Image

from limner.core.errors import GenerationCanceledError, InvalidRequestError
from limner.core.progress import CancelToken, ProgressCallback, ProgressEvent, ignore_progress
from limner.engines.local.device import Placement
from limner.engines.local.loading import load_pipeline
from limner.engines.local.model_refs import resolve_model
from limner.finetune.config import DreamBoothConfig
from limner.finetune.dataset import SubjectImages, square
from limner.training.data import step_generator
from limner.training.diffusion import encode_prompts
from limner.training.loop import LoopConfig, run_loop

LORA_TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]
LORA_FILE = "pytorch_lora_weights.safetensors"
_ID_PREFIX = re.compile(r"^n\d{8}-")  # ImageNet/Stanford Dogs folder ids: "n02085620-Chihuahua"


@dataclass
class FinetuneResult:
    """Where the trained weights are and what they mean."""

    weights: Path
    kind: str  # "lora" or "finetuned"
    steps: int
    architecture: str
    tokens: dict[str, str] = field(default_factory=dict)  # class -> token (folder-of-classes mode)
    validation_images: list[Path] = field(default_factory=list)


def class_words(folder_name: str) -> str:
    return _ID_PREFIX.sub("", folder_name).replace("_", " ").replace("-", " ").strip()


def instance_prompts(cfg: DreamBoothConfig, subject: SubjectImages) -> tuple[list[str], dict[str, str]]:
    """The prompt of each picture, and the class -> token map in folder-of-classes mode."""
    if not cfg.classes_mode:
        return [cfg.instance_prompt] * len(subject.images), {}
    tokens = {name: f"lmn{index}" for index, name in enumerate(subject.class_names)}
    prompts = [cfg.instance_prompt.replace("{token}", tokens[name]).replace("{class}", class_words(name))
               for name in subject.classes]  # fmt: skip
    return prompts, tokens


class DreamBoothTask:
    """One optimisation step over cached latents and embeddings (the ``TrainTask`` of the shared loop)."""

    def __init__(
        self,
        pipeline: Any,
        cfg: DreamBoothConfig,
        latents: tuple[torch.Tensor, torch.Tensor],
        hidden: torch.Tensor,
        prior: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None,
        accelerator: Accelerator,
        progress: ProgressCallback,
        cancel: CancelToken,
        on_step: Callable[[int], None],
    ) -> None:
        self.cfg = cfg
        self.unet = pipeline.unet
        self.latent_mean, self.latent_std = latents
        self.hidden = hidden
        self.prior = prior
        self.scaling = float(pipeline.vae.config.scaling_factor)
        self.noise = DDPMScheduler.from_config(pipeline.scheduler.config)
        self.accelerator = accelerator
        self.progress = progress
        self.cancel = cancel
        self.on_step = on_step
        self.params = [param for param in self.unet.parameters() if param.requires_grad]
        self.optimizer = _optimizer(self.params, cfg)

    def _sample(
        self, mean: torch.Tensor, std: torch.Tensor, index: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        rows = torch.randint(0, len(mean), (self.cfg.batch_size,), generator=generator)
        draw = torch.randn(mean[rows].shape, generator=generator)
        return rows, (mean[rows] + std[rows] * draw) * self.scaling

    def _loss(self, latents: torch.Tensor, hidden: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        device = self.accelerator.device
        noise = torch.randn(latents.shape, generator=generator)
        timesteps = torch.randint(0, self.noise.config.num_train_timesteps, (len(latents),), generator=generator)
        noisy = self.noise.add_noise(latents, noise, timesteps)
        if self.noise.config.prediction_type == "v_prediction":
            target = self.noise.get_velocity(latents, noise, timesteps)
        else:
            target = noise
        with self.accelerator.autocast():
            prediction = self.unet(
                noisy.to(device), timesteps.to(device), encoder_hidden_states=hidden.to(device)
            ).sample
        return torch.nn.functional.mse_loss(prediction.float(), target.to(device).float())

    def step(self, index: int) -> dict[str, float]:
        if self.cancel.canceled:
            raise GenerationCanceledError("training canceled")
        self.optimizer.zero_grad(set_to_none=True)
        total = 0.0
        for micro in range(self.cfg.gradient_accumulation):
            generator = step_generator(self.cfg.seed, index * self.cfg.gradient_accumulation + micro, stream=11)
            rows, latents = self._sample(self.latent_mean, self.latent_std, index, generator)
            loss = self._loss(latents, self.hidden[rows], generator)
            if self.prior is not None:
                prior_mean, prior_std, prior_hidden = self.prior
                prior_rows, prior_latents = self._sample(prior_mean, prior_std, index, generator)
                loss = loss + self.cfg.prior_loss_weight * self._loss(
                    prior_latents, prior_hidden[prior_rows], generator
                )
            self.accelerator.backward(loss / self.cfg.gradient_accumulation)
            total += loss.item() / self.cfg.gradient_accumulation
        self.accelerator.clip_grad_norm_(self.params, 1.0)
        self.optimizer.step()
        self.progress(ProgressEvent(step=index + 1, total_steps=self.cfg.steps))
        self.on_step(index + 1)
        return {"loss": total}

    def trainable_state(self) -> dict[str, torch.Tensor]:
        if self.cfg.full_finetune:
            return {name: tensor.detach().clone() for name, tensor in self.unet.state_dict().items()}
        return {name: tensor.detach().clone() for name, tensor in get_peft_model_state_dict(self.unet).items()}

    def state_dict(self) -> dict[str, Any]:
        return {"weights": self.trainable_state(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.cfg.full_finetune:
            self.unet.load_state_dict(state["weights"])
        else:
            set_peft_model_state_dict(self.unet, state["weights"])
        self.optimizer.load_state_dict(state["optimizer"])


def _optimizer(params: list[torch.nn.Parameter], cfg: DreamBoothConfig) -> torch.optim.Optimizer:
    if cfg.use_8bit_adam:
        try:
            import bitsandbytes as bnb
        except ImportError as exc:
            raise InvalidRequestError("8-bit Adam needs bitsandbytes (pip install bitsandbytes)",
                                      param="use_8bit_adam") from exc  # fmt: skip
        optimizer: torch.optim.Optimizer = bnb.optim.AdamW8bit(params, lr=cfg.learning_rate)
        return optimizer
    return torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=1e-2)


def _pixels(images: list[Image.Image], side: int) -> torch.Tensor:
    arrays = [np.asarray(square(image.convert("RGB"), side), dtype=np.float32) / 127.5 - 1.0 for image in images]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()


@torch.no_grad()
def encode_latents(pipeline: Any, images: list[Image.Image], side: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior mean and std of each picture (sampled per step, so the VAE never runs in the loop)."""
    means, stds = [], []
    for start in range(0, len(images), 8):
        pixels = _pixels(images[start : start + 8], side).to(pipeline.device, dtype=pipeline.vae.dtype)
        posterior = pipeline.vae.encode(pixels).latent_dist
        means.append(posterior.mean.float().cpu())
        stds.append(posterior.std.float().cpu())
    return torch.cat(means), torch.cat(stds)


@torch.no_grad()
def encode_texts(pipeline: Any, prompts: list[str]) -> torch.Tensor:
    unique = sorted(set(prompts))
    embedded = encode_prompts(pipeline.tokenizer, pipeline.text_encoder, unique, pipeline.device).float().cpu()
    lookup = {prompt: embedded[index] for index, prompt in enumerate(unique)}
    return torch.stack([lookup[prompt] for prompt in prompts])


def class_images(pipeline: Any, cfg: DreamBoothConfig, base_key: str, side: int, cache_dir: Path) -> list[Image.Image]:
    """Pictures of the class made by the base model, cached by (model, prompt, size, seed)."""
    assert cfg.class_prompt is not None
    key = hashlib.sha256(f"{base_key}|{cfg.class_prompt}|{side}|{cfg.seed}".encode()).hexdigest()[:16]
    folder = cache_dir / key
    folder.mkdir(parents=True, exist_ok=True)
    images: list[Image.Image] = []
    for index in range(cfg.num_class_images):
        path = folder / f"{index:05d}.png"
        if not path.is_file():
            generator = torch.Generator().manual_seed(cfg.seed + index)
            picture = pipeline(cfg.class_prompt, height=side, width=side, num_inference_steps=20,
                               generator=generator).images[0]  # fmt: skip
            picture.save(path)
        with Image.open(path) as stored:
            images.append(stored.convert("RGB"))
    return images


def run_dreambooth(
    base: str,
    subject: SubjectImages,
    cfg: DreamBoothConfig,
    work_dir: Path,
    out_dir: Path,
    placement: Placement,
    *,
    progress: ProgressCallback = ignore_progress,
    cancel: CancelToken | None = None,
    on_validation: Callable[[int, Path], None] | None = None,
    show_progress: bool = False,
) -> FinetuneResult:
    """Train, checkpoint into ``work_dir`` (resuming from it), export into ``out_dir``."""
    cancel = cancel or CancelToken()
    source = resolve_model(base)
    pipeline = load_pipeline(source, placement)
    if not all(hasattr(pipeline, part) for part in ("unet", "vae", "text_encoder", "tokenizer")):
        raise InvalidRequestError(
            f"{base} is not a Stable-Diffusion-family model; DreamBooth here needs one", param="base"
        )
    side = cfg.resolution or int(pipeline.unet.config.sample_size) * int(pipeline.vae_scale_factor)
    prompts, tokens = instance_prompts(cfg, subject)
    pipeline.vae.requires_grad_(False)
    pipeline.text_encoder.requires_grad_(False)
    latents = encode_latents(pipeline, subject.images, side)
    hidden = encode_texts(pipeline, prompts)
    prior = None
    if cfg.prior_preservation:
        assert cfg.class_prompt is not None
        pictures = class_images(pipeline, cfg, source.location, side, work_dir / "class-images")
        prior_mean, prior_std = encode_latents(pipeline, pictures, side)
        prior = (prior_mean, prior_std, encode_texts(pipeline, [cfg.class_prompt] * len(pictures)))

    unet = pipeline.unet
    torch.manual_seed(cfg.seed)
    if cfg.full_finetune:
        unet.requires_grad_(True)
    else:
        unet.requires_grad_(False)
        unet.add_adapter(LoraConfig(r=cfg.rank, lora_alpha=cfg.rank, init_lora_weights="gaussian",
                                    target_modules=LORA_TARGETS))  # fmt: skip
    if cfg.gradient_checkpointing:
        unet.enable_gradient_checkpointing()
    unet.train()
    accelerator = Accelerator(mixed_precision=cfg.mixed_precision if placement.device.type == "cuda" else "no",
                              cpu=placement.device.type == "cpu")  # fmt: skip
    validations: list[Path] = []
    validation_prompt = cfg.validation_prompt or prompts[0]

    def validate(step: int) -> None:
        if not cfg.validation_every or step % cfg.validation_every:
            return
        unet.eval()
        with torch.no_grad():
            picture = pipeline(validation_prompt, height=side, width=side, num_inference_steps=20,
                               generator=torch.Generator().manual_seed(cfg.seed)).images[0]  # fmt: skip
        unet.train()
        path = work_dir / "validation" / f"step-{step:06d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        picture.save(path)
        validations.append(path)
        if on_validation is not None:
            on_validation(step, path)

    task = DreamBoothTask(pipeline, cfg, latents, hidden, prior, accelerator, progress, cancel, validate)
    pipeline.set_progress_bar_config(disable=True)
    loop = LoopConfig(steps=cfg.steps, work_dir=work_dir / "run", checkpoint_every=cfg.checkpoint_every,
                      description="dreambooth", progress=show_progress)  # fmt: skip
    run_loop(task, loop)
    unet.eval()
    out_dir.mkdir(parents=True, exist_ok=True)
    architecture = "sdxl" if "XL" in type(pipeline).__name__ else "sd"
    if cfg.full_finetune:
        pipeline.save_pretrained(str(out_dir), safe_serialization=True)
        return FinetuneResult(out_dir, "finetuned", cfg.steps, architecture, tokens, validations)
    StableDiffusionPipeline.save_lora_weights(str(out_dir), unet_lora_layers=get_peft_model_state_dict(unet),
                                              weight_name=LORA_FILE, safe_serialization=True)  # fmt: skip
    return FinetuneResult(out_dir / LORA_FILE, "lora", cfg.steps, architecture, tokens, validations)
