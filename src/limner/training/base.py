"""The whole limner-tiny recipe: dataset -> tokenizer -> VAE -> latents -> text encoder + UNet -> folder.

Why staged, each with its own work folder: the VAE must be good (>= 25 dB) before diffusion
training starts, since the UNet learns its latent space; and every stage resumes from its own
checkpoint, so ``limner train base --resume`` after any interruption skips finished stages and
continues the current one where it stopped.

Why ``init_from``: a finished model (the shipped limner-tiny, say) can start a new phase of
diffusion training without its run's work folder: its VAE and tokenizer are kept as they are, its
UNet and text encoder are the starting weights (and the EMA's), and the optimizer and learning-rate
schedule start afresh with their own peak. A later low-rate phase is how text binding is refined
once the work folder of the original run is gone.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import torch
from accelerate import Accelerator
from diffusers.models.autoencoders.autoencoder_kl import AutoencoderKL
from diffusers.models.unets.unet_2d_condition import UNet2DConditionModel
from safetensors.torch import load_file, save_file
from transformers import CLIPTextModel, CLIPTokenizer

from limner.training.architecture import (
    TinyArchitecture,
    build_text_encoder,
    build_unet,
    build_vae,
    inference_scheduler,
)
from limner.training.autoencoder import (
    VaeTask,
    VaeTrainConfig,
    centre_latents,
    encode_latents,
    reconstruction_psnr,
)
from limner.training.data import CaptionedImages
from limner.training.diffusion import DiffusionTask, DiffusionTrainConfig
from limner.training.export import folder_size, save_pipeline
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
    arch: TinyArchitecture = field(default_factory=TinyArchitecture)
    learning_rate: float = DiffusionTrainConfig.learning_rate
    warmup_steps: int = DiffusionTrainConfig.warmup_steps
    noise_offset: float = 0.15
    init_from: Path | None = None


@dataclass(frozen=True)
class SavedModel:
    """The four trained parts of a limner-tiny folder, loaded in float32 for further training."""

    tokenizer: CLIPTokenizer
    vae: AutoencoderKL
    unet: UNet2DConditionModel
    text_encoder: CLIPTextModel

    @classmethod
    def load(cls, folder: Path) -> SavedModel:
        """Load a diffusers folder saved by ``save_pipeline`` (safetensors only)."""
        missing = [part for part in ("tokenizer", "vae", "unet", "text_encoder") if not (folder / part).is_dir()]
        if missing:
            raise FileNotFoundError(f"{folder} is not a limner model folder: it has no {', '.join(missing)}")
        vae: AutoencoderKL = AutoencoderKL.from_pretrained(str(folder / "vae"), use_safetensors=True)
        unet: UNet2DConditionModel = UNet2DConditionModel.from_pretrained(str(folder / "unet"), use_safetensors=True)
        text_encoder = CLIPTextModel.from_pretrained(str(folder / "text_encoder"), use_safetensors=True)
        return cls(
            tokenizer=CLIPTokenizer.from_pretrained(str(folder / "tokenizer")),
            vae=vae.float().eval(),
            unet=unet.float(),
            text_encoder=text_encoder.float(),
        )


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
    sample = dataset.images[torch.randperm(len(dataset), generator=torch.Generator().manual_seed(1))[:256]]
    shift, scale = centre_latents(trained, dataset.images)
    psnr = reconstruction_psnr(trained, sample)
    trained.save_pretrained(str(final), safe_serialization=True)
    metrics = {"psnr_db": psnr, "latent_shift": shift.tolist(), "latent_scale": scale.tolist()}
    (final / "metrics.json").write_text(json.dumps(metrics), encoding="utf-8")
    log.info("vae: %.2f dB PSNR, latents centred (shift %s, scale %s)", psnr, _fmt(shift), _fmt(scale))
    return trained


def _fmt(values: torch.Tensor) -> str:
    return "(" + ", ".join(f"{v:.3f}" for v in values.tolist()) + ")"


def cached_latents(
    cfg: BaseTrainConfig, vae: AutoencoderKL, dataset: CaptionedImages
) -> tuple[torch.Tensor, torch.Tensor]:
    path = cfg.work / "latents.safetensors"
    if path.exists():
        saved = load_file(str(path))
        return saved["mean"], saved["std"]
    mean, std = encode_latents(vae, dataset.images)
    save_file({"mean": mean.contiguous(), "std": std.contiguous()}, str(path))
    return mean, std


def train_diffusion_stage(
    cfg: BaseTrainConfig,
    dataset: CaptionedImages,
    vae: AutoencoderKL,
    tokenizer: CLIPTokenizer,
    accelerator: Accelerator,
    start: SavedModel | None = None,
) -> Path:
    """Train (or resume) text encoder + UNet; export the EMA model to ``cfg.out`` at every checkpoint.

    With ``start``, its UNet and text encoder are the initial weights instead of fresh ones.
    """
    mean, std = cached_latents(cfg, vae, dataset)
    torch.manual_seed(cfg.seed + 1)
    unet = start.unet if start is not None else build_unet(cfg.arch)
    text_encoder = start.text_encoder if start is not None else build_text_encoder(cfg.arch, tokenizer)
    diff_cfg = DiffusionTrainConfig(
        batch_size=cfg.unet_batch,
        total_steps=cfg.unet_steps,
        seed=cfg.seed,
        learning_rate=cfg.learning_rate,
        warmup_steps=cfg.warmup_steps,
        noise_offset=cfg.noise_offset,
    )
    task = DiffusionTask(
        unet,
        text_encoder,
        tokenizer,
        mean,
        std,
        float(vae.config["scaling_factor"]),
        dataset.captions,
        diff_cfg,
        accelerator,
    )

    def export(step: int) -> None:
        models = task.ema_models()
        save_pipeline(
            cfg.out,
            unet=cast(UNet2DConditionModel, models["unet"]),
            vae=vae,
            text_encoder=cast(CLIPTextModel, models["text_encoder"]),
            tokenizer=tokenizer,
            scheduler=inference_scheduler(),
        )
        log.info("exported EMA weights of step %d to %s (%.1f MB)", step, cfg.out, folder_size(cfg.out) / 1e6)

    loop = LoopConfig(
        steps=cfg.unet_steps,
        work_dir=cfg.work / "diffusion",
        checkpoint_every=cfg.checkpoint_every,
        resume=cfg.resume,
        description="unet+text",
        progress=cfg.progress,
    )
    run_loop(task, loop, on_checkpoint=export)
    if not (cfg.out / "model_index.json").exists():
        export(cfg.unet_steps)
    return cfg.out


def train_base(cfg: BaseTrainConfig) -> Path:
    """Run every stage of the base recipe; safe to call again to resume."""
    start = None
    if cfg.init_from is not None:
        if cfg.init_from.resolve() == cfg.out.resolve():
            raise ValueError("--out must differ from --init-from: exports replace the output folder")
        start = SavedModel.load(cfg.init_from)
    cfg.work.mkdir(parents=True, exist_ok=True)
    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    dataset = CaptionedImages.load(cfg.data)
    if start is not None:
        return train_diffusion_stage(cfg, dataset, start.vae, start.tokenizer, accelerator, start)
    tokenizer = prepare_tokenizer(cfg, dataset)
    vae = train_vae_stage(cfg, dataset, accelerator)
    return train_diffusion_stage(cfg, dataset, vae, tokenizer, accelerator)
