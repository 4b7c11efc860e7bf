"""A small CLIP-style image encoder, trained contrastively against a frozen text encoder.

Why our own: an IP-Adapter conditions the UNet on an image embedding, and the public encoders
(OpenCLIP ViT-H/14, 630M parameters, 224 px) are a download and a thousand times the size of
limner-tiny. A 64 px vision tower trained against limner-tiny's own text encoder learns the
features the emoji captions name (what the thing is, its colour, its art style), which is what a
character reference has to carry.

Why a ``CLIPVisionModelWithProjection``: it is the class diffusers' ``load_ip_adapter`` loads from
an adapter's ``image_encoder/`` folder, and ``pipeline.encode_image`` feeds it through a
``CLIPImageProcessor`` (resize, centre crop, OpenAI CLIP mean/std). Training feeds pixels normalised
the same way, so the embedding at inference is the one the adapter was trained on.

Why InfoNCE against the *frozen* text encoder's pooled output (through a learned linear map): the
text side is fixed, so the image tower is pulled into a space the captions already organise; pairs
of the same emoji (its two art styles, caption variants) count as positives, not as negatives.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from accelerate import Accelerator
from torch import nn
from transformers import (
    CLIPImageProcessor,
    CLIPTextModel,
    CLIPTokenizer,
    CLIPVisionConfig,
    CLIPVisionModelWithProjection,
)
from transformers.utils.constants import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD

from limner.training.autoencoder import lr_factor
from limner.training.checkpoint import restore_training_state, training_state
from limner.training.data import batch_indices, step_generator
from limner.training.ema import EMA


@dataclass(frozen=True)
class EncoderArchitecture:
    """The vision tower: 64 px input, 8 px patches (64 tokens + class token), a 128-d embedding."""

    image_size: int = 64
    patch_size: int = 16
    hidden: int = 128
    layers: int = 4
    heads: int = 4
    projection_dim: int = 128

    def config(self) -> CLIPVisionConfig:
        return CLIPVisionConfig(
            image_size=self.image_size,
            patch_size=self.patch_size,
            hidden_size=self.hidden,
            intermediate_size=self.hidden * 4,
            num_hidden_layers=self.layers,
            num_attention_heads=self.heads,
            projection_dim=self.projection_dim,
        )


@dataclass(frozen=True)
class EncoderTrainConfig:
    batch_size: int = 128
    total_steps: int = 600
    learning_rate: float = 5e-4
    warmup_steps: int = 100
    weight_decay: float = 0.05
    ema_decay: float = 0.99
    seed: int = 0


def normalise(pixels: torch.Tensor) -> torch.Tensor:
    """NCHW pixels in [0, 1] -> the ``CLIPImageProcessor`` output (OpenAI CLIP mean and std)."""
    mean = torch.tensor(OPENAI_CLIP_MEAN, dtype=pixels.dtype).view(1, 3, 1, 1)
    std = torch.tensor(OPENAI_CLIP_STD, dtype=pixels.dtype).view(1, 3, 1, 1)
    return (pixels - mean.to(pixels.device)) / std.to(pixels.device)


def augment(pixels: torch.Tensor, generator: torch.Generator, shift: float = 0.08, scale: float = 0.15) -> torch.Tensor:
    """Random small shifts, zoom and horizontal flips of NCHW [0, 1] pictures on a white ground.

    Why these only: a character reference is the same thing drawn a little off-centre, larger or
    smaller, or facing the other way; colour must not be augmented, since colour is identity here.
    """
    n = pixels.shape[0]
    zoom = 1.0 + (torch.rand(n, generator=generator) * 2 - 1) * scale
    flip = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0)
    offsets = (torch.rand(n, 2, generator=generator) * 2 - 1) * shift * 2
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = flip / zoom
    theta[:, 1, 1] = 1.0 / zoom
    theta[:, :, 2] = offsets
    grid = F.affine_grid(theta.to(pixels.device), list(pixels.shape), align_corners=False)
    # Sample the inverted picture so the area brought in from outside is white, the emoji's ground.
    moved = F.grid_sample(1.0 - pixels, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return 1.0 - moved


def identity_keys(records: list[dict[str, Any]]) -> list[str]:
    """What makes two images the same subject: the emoji's code point, else its name or caption."""
    return [str(r.get("unified") or r.get("name") or r.get("caption")) for r in records]


def pooled_text(
    tokenizer: CLIPTokenizer, text_encoder: CLIPTextModel, texts: list[str], batch_size: int = 256
) -> torch.Tensor:
    """Pooled (end-of-text token) output of the frozen text encoder for every text."""
    outputs: list[torch.Tensor] = []
    with torch.no_grad():
        for start in range(0, len(texts), batch_size):
            ids = tokenizer(
                texts[start : start + batch_size],
                padding="max_length",
                max_length=tokenizer.model_max_length,
                truncation=True,
                return_tensors="pt",
            ).input_ids
            outputs.append(text_encoder(ids).pooler_output.float())
    return torch.cat(outputs)


class ContrastiveModels(nn.Module):
    """The trained parts: the vision tower, a map of pooled text into its space, a temperature."""

    def __init__(self, arch: EncoderArchitecture, text_width: int) -> None:
        super().__init__()
        self.vision = CLIPVisionModelWithProjection(arch.config())
        self.text_projection = nn.Linear(text_width, arch.projection_dim, bias=False)
        self.logit_scale = nn.Parameter(torch.tensor(2.659))  # ln(1 / 0.07), CLIP's start

    def image_features(self, pixels: torch.Tensor) -> torch.Tensor:
        embeds: torch.Tensor = self.vision(pixel_values=normalise(pixels)).image_embeds
        return F.normalize(embeds, dim=-1)


def soft_infonce(logits: torch.Tensor, same: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE whose targets spread over every positive (same subject) in the batch."""
    targets = same.float() / same.float().sum(1, keepdim=True)
    image_to_text = -(targets * logits.log_softmax(1)).sum(1).mean()
    text_to_image = -(targets.T * logits.T.log_softmax(1)).sum(1).mean()
    return (image_to_text + text_to_image) / 2


class EncoderTask:
    """One contrastive step: augmented images against one caption variant each."""

    def __init__(
        self,
        models: ContrastiveModels,
        images: torch.Tensor,
        caption_index: list[list[int]],
        text_features: torch.Tensor,
        keys: list[str],
        train_indices: torch.Tensor,
        cfg: EncoderTrainConfig,
        accelerator: Accelerator,
    ) -> None:
        self.cfg = cfg
        self.accelerator = accelerator
        self.images = images
        self.caption_index = caption_index
        self.text_features = text_features
        key_ids = {key: i for i, key in enumerate(sorted(set(keys)))}
        self.subjects = torch.tensor([key_ids[k] for k in keys])
        self.train_indices = train_indices
        self.ema = EMA(models, cfg.ema_decay)
        decay: list[nn.Parameter] = []
        no_decay: list[nn.Parameter] = []
        for name, param in models.named_parameters():
            (no_decay if param.ndim < 2 or "embedding" in name else decay).append(param)
        groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
        optimizer = torch.optim.AdamW(groups, lr=cfg.learning_rate)
        self.models, self.optimizer = accelerator.prepare(models, optimizer)

    def step(self, index: int) -> dict[str, float]:
        cfg = self.cfg
        for group in self.optimizer.param_groups:
            group["lr"] = cfg.learning_rate * lr_factor(index, cfg.warmup_steps, cfg.total_steps)
        device = self.accelerator.device
        picks = batch_indices(len(self.train_indices), cfg.batch_size, cfg.seed, index)
        idx = self.train_indices[picks]
        gen = step_generator(cfg.seed, index, stream=5)
        draws = torch.rand(len(idx), generator=gen).tolist()
        variants = [self.caption_index[i] for i in idx.tolist()]
        chosen = [v[int(d * len(v)) % len(v)] for v, d in zip(variants, draws, strict=True)]
        pixels = augment(self.images[idx].permute(0, 3, 1, 2).float() / 255.0, gen).to(device)
        models: ContrastiveModels = self.accelerator.unwrap_model(self.models)
        image = models.image_features(pixels)
        text = F.normalize(models.text_projection(self.text_features[chosen].to(device)), dim=-1)
        logits = models.logit_scale.clamp(max=4.6052).exp() * image @ text.T
        subjects = self.subjects[idx]
        same = (subjects[:, None] == subjects[None, :]).to(device)
        loss = soft_infonce(logits, same)
        self.optimizer.zero_grad(set_to_none=True)
        self.accelerator.backward(loss)
        self.accelerator.clip_grad_norm_(self.models.parameters(), 1.0)
        self.optimizer.step()
        self.ema.update(models, index)
        hits = same.gather(1, logits.argmax(1, keepdim=True)).float().mean()
        return {"loss": loss.item(), "acc": hits.item()}

    def ema_models(self) -> ContrastiveModels:
        models: ContrastiveModels = copy.deepcopy(self.accelerator.unwrap_model(self.models)).cpu().eval()
        self.ema.copy_to(models)
        return models

    def state_dict(self) -> dict[str, Any]:
        return training_state("models", self.accelerator.unwrap_model(self.models), self.ema, self.optimizer)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        restore_training_state(state, "models", self.accelerator.unwrap_model(self.models), self.ema, self.optimizer)


def save_image_encoder(vision: CLIPVisionModelWithProjection, folder: Path) -> Path:
    """The ``image_encoder/`` folder ``load_ip_adapter`` reads, with the processor that matches training."""
    folder = Path(folder)
    vision = copy.deepcopy(vision).float().eval()
    vision.save_pretrained(str(folder), safe_serialization=True)
    size: int = vision.config.image_size  # type: ignore[assignment]  # an int for every CLIP vision config
    CLIPImageProcessor(size={"shortest_edge": size}, crop_size={"height": size, "width": size}).save_pretrained(
        str(folder)
    )
    return folder


def embed_images(vision: CLIPVisionModelWithProjection, pixels: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """``image_embeds`` (unnormalised, as ``pipeline.encode_image`` returns them) of NCHW [0, 1] pixels."""
    outputs: list[torch.Tensor] = []
    with torch.no_grad():
        for start in range(0, len(pixels), batch_size):
            batch = normalise(pixels[start : start + batch_size])
            outputs.append(vision(pixel_values=batch).image_embeds.float())
    return torch.cat(outputs)


def patch_features(vision: CLIPVisionModelWithProjection, pixels: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Penultimate-layer hidden states ``[N, patches + 1, hidden]`` of NCHW [0, 1] pixels.

    Why the penultimate layer: it is what diffusers' ``encode_image`` feeds an IP-Adapter Plus
    resampler (``hidden_states[-2]``), so training reads the same features as generation.
    """
    outputs: list[torch.Tensor] = []
    with torch.no_grad():
        for start in range(0, len(pixels), batch_size):
            batch = normalise(pixels[start : start + batch_size])
            outputs.append(vision(pixel_values=batch, output_hidden_states=True).hidden_states[-2].float())
    return torch.cat(outputs)


def blank_features(vision: CLIPVisionModelWithProjection, image_size: int, patches: bool) -> torch.Tensor:
    """The unconditional reference ``encode_image`` uses: zeros, or the features of zero pixel values."""
    if not patches:
        return torch.zeros(int(vision.config.projection_dim))
    with torch.no_grad():
        blank = torch.zeros(1, 3, image_size, image_size)
        return vision(pixel_values=blank, output_hidden_states=True).hidden_states[-2][0].float()


def retrieval_accuracy(
    models: ContrastiveModels, images: torch.Tensor, text_features: torch.Tensor, keys: list[str]
) -> tuple[float, float]:
    """Image -> caption top-1 and top-5 among the given images' own captions (same subject counts)."""
    pixels = images.permute(0, 3, 1, 2).float() / 255.0
    with torch.no_grad():
        image = F.normalize(embed_images(models.vision, pixels), dim=-1)
        text = F.normalize(models.text_projection(text_features), dim=-1)
    ranks = (image @ text.T).topk(min(5, len(keys)), dim=1).indices
    same = [[keys[int(j)] == keys[i] for j in row] for i, row in enumerate(ranks)]
    top1 = sum(row[0] for row in same) / len(same)
    top5 = sum(any(row) for row in same) / len(same)
    return top1, top5
