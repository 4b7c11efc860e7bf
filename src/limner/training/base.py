"""The whole limner-tiny recipe: dataset -> tokenizer -> VAE -> latents -> text encoder + UNet -> folder.

Why staged, each with its own work folder: the VAE must be good (>= 25 dB) before diffusion
training starts, since the UNet learns its latent space; and every stage resumes from its own
checkpoint, so ``limner train base --resume`` after any interruption skips finished stages and
continues the current one where it stopped.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from accelerate import Accelerator
from diffusers import AutoencoderKL
from transformers import CLIPTokenizer

from limner.training.architecture import TinyArchitecture, build_vae
from limner.training.autoencoder import VaeTask, VaeTrainConfig, encode_latents, reconstruction_psnr
from limner.training.data import CaptionedImages
from limner.training.loop import LoopConfig, run_loop
from limner.training.tokenizer import DEFAULT_BPE_PATH, fetch_clip_bpe, trimmed_clip_tokenizer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BaseTrainConfig:
    data: Path
    out: Path
    work: Path
    vae_steps: int = 2000
    unet_steps: int = 20000
    vae_batch: int = 32
    unet_batch: int = 64
    seed: int = 0
    checkpoint_every: int = 500
    resume: bool = True
    progress: bool = True
    bpe_path: Path = DEFAULT_BPE_PATH
    arch: TinyArchitecture = TinyArchitecture()


def prepare_tokenizer(cfg: BaseTrainConfig, dataset: CaptionedImages) -> CLIPTokenizer:
    folder = cfg.work / "tokenizer"
    if (folder / "tokenizer_config.json").exists():
        return CLIPTokenizer.from_pretrained(str(folder))
    texts = [c for variants in dataset.captions for c in variants]
    return trimmed_clip_tokenizer(texts, fetch_clip_bpe(cfg.bpe_path), folder, cfg.arch.text_positions)


def train_vae_stage(cfg: BaseTrainConfig, dataset: CaptionedImages, accelerator: Accelerator) -> AutoencoderKL:
    """Train (or resume) the autoencoder; return its EMA weights with the latent scaling factor set."""
    final = cfg.work / "vae-final"
    if (final / "config.json").exists():
        vae_done: AutoencoderKL = AutoencoderKL.from_pretrained(str(final))
        return vae_done
    torch.manual_seed(cfg.seed)
    vae = build_vae(cfg.arch)
    vae_cfg = VaeTrainConfig(batch_size=cfg.vae_batch, total_steps=cfg.vae_steps, seed=cfg.seed)
    task = VaeTask(vae, dataset.images, vae_cfg, accelerator)
    loop = LoopConfig(
        steps=cfg.vae_steps,
        work_dir=cfg.work / "vae",
        checkpoint_every=cfg.checkpoint_every,
        resume=cfg.resume,
        description="vae",
        progress=cfg.progress,
    )
    run_loop(task, loop)
    trained = build_vae(cfg.arch)
    task.ema.copy_to(trained)
    trained.eval()
    held_out = dataset.images[torch.randperm(len(dataset), generator=torch.Generator().manual_seed(1))[:256]]
    psnr = reconstruction_psnr(trained, held_out)
    means, _ = encode_latents(trained, held_out)
    scale = float(1.0 / means.std())
    trained.register_to_config(scaling_factor=scale)
    trained.save_pretrained(str(final), safe_serialization=True)
    (final / "metrics.json").write_text(json.dumps({"psnr_db": psnr, "scaling_factor": scale}), encoding="utf-8")
    log.info("vae: %.2f dB PSNR, scaling factor %.4f", psnr, scale)
    return trained
