"""Writing the standard diffusers folder that every engine task loads with no special code.

Why a plain ``StableDiffusionPipeline`` folder: ``DiffusionPipeline.from_pretrained`` picks the
pipeline from ``model_index.json``, and img2img / inpaint come from ``AutoPipelineFor*.from_pipe``
on the same weights. Weights are safetensors only. The UNet and VAE may be stored in float16 to
halve the size; diffusers loads them into float32 modules unless asked otherwise. The text encoder
stays float32, because transformers would otherwise load it as float16 (its config dtype) next to
a float32 UNet.
"""

from __future__ import annotations

import copy
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import torch
from diffusers.models.autoencoders.autoencoder_kl import AutoencoderKL
from diffusers.models.unets.unet_2d_condition import UNet2DConditionModel
from diffusers.pipelines.pipeline_utils import DiffusionPipeline
from diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion import StableDiffusionPipeline
from diffusers.schedulers.scheduling_utils import SchedulerMixin
from transformers import CLIPTextModel, CLIPTokenizer

ModelT = TypeVar("ModelT", bound=torch.nn.Module)


def save_pipeline(
    folder: Path,
    *,
    unet: UNet2DConditionModel,
    vae: AutoencoderKL,
    text_encoder: CLIPTextModel,
    tokenizer: CLIPTokenizer,
    scheduler: SchedulerMixin,
    half: bool = True,
    pipeline_class: Callable[..., DiffusionPipeline] = StableDiffusionPipeline,
) -> Path:
    """Save the components as a diffusers folder, replacing ``folder`` atomically-ish (tmp + rename).

    ``pipeline_class`` is what ``model_index.json`` names (an edit model is an InstructPix2Pix pipeline
    with the same components).
    """
    folder = Path(folder)
    pipeline = pipeline_class(
        unet=_storage_copy(unet, half),
        vae=_storage_copy(vae, half),
        text_encoder=copy.deepcopy(text_encoder).float(),
        tokenizer=tokenizer,
        scheduler=scheduler,  # any SD-compatible scheduler works
        safety_checker=None,  # limner-tiny ships without one
        feature_extractor=None,
        requires_safety_checker=False,
    )
    tmp = folder.with_name(folder.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    pipeline.save_pretrained(str(tmp), safe_serialization=True)
    if folder.exists():
        # Keep files that are not part of the pipeline (model card, licences).
        for extra in folder.iterdir():
            if extra.is_file() and not (tmp / extra.name).exists():
                shutil.copy2(extra, tmp / extra.name)
        shutil.rmtree(folder)
    tmp.rename(folder)
    return folder


def _storage_copy(model: ModelT, half: bool) -> ModelT:
    copied = copy.deepcopy(model)
    return copied.half() if half else copied.float()


def folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())
