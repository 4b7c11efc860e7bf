"""The limner-tiny-character recipe: image encoder, then IP-Adapter, then one adapter folder.

Why two stages, each resumable from its own work folder: the adapter learns from the encoder's
embeddings, so the encoder must be finished (and its embeddings cached) before the adapter starts;
a killed run continues the current stage where its last checkpoint stopped, and every checkpoint
exports what exists, so even a cut run leaves a loadable folder.

Output (the layout diffusers' ``load_ip_adapter(folder, subfolder="", weight_name=...)`` reads):
``ip-adapter.safetensors`` and ``image_encoder/`` (a ``CLIPVisionModelWithProjection`` with its
``CLIPImageProcessor`` config), plus ``training.json`` (settings, held-out subjects, metrics).

Why a held-out set: the quality bar (``benchmarks/limner_tiny_character_quality.py``) uses
references of emoji neither stage saw (both art styles of each held-out emoji), chosen by
:func:`held_out_split` from the seed, so the benchmark recomputes the same split.
"""

from __future__ import annotations

import json
import logging
import random
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from safetensors.torch import load_file, save_file
from transformers import CLIPVisionModelWithProjection

from limner.training.autoencoder import encode_latents
from limner.training.base import SavedModel
from limner.training.data import CaptionedImages, step_generator
from limner.training.image_encoder import (
    ContrastiveModels,
    EncoderArchitecture,
    EncoderTask,
    EncoderTrainConfig,
    augment,
    blank_features,
    embed_images,
    identity_keys,
    patch_features,
    pooled_text,
    retrieval_accuracy,
    save_image_encoder,
)
from limner.training.ip_adapter import ADAPTER_FILE, AdapterTask, AdapterTrainConfig, save_adapter
from limner.training.loop import LoopConfig, run_loop

log = logging.getLogger(__name__)

ENCODER_FOLDER = "image_encoder"
REFERENCE_VIEWS = 4  # cached embeddings per picture: the plain picture and three augmented views


@dataclass(frozen=True)
class CharacterTrainConfig:
    data: Path
    base: Path
    out: Path
    work: Path
    encoder_steps: int = 1200
    adapter_steps: int = 2600
    encoder_batch: int = 128
    adapter_batch: int = 32
    held_out: int = 100
    seed: int = 0
    checkpoint_every: int = 250
    resume: bool = True
    progress: bool = True
    encoder_lr: float = EncoderTrainConfig.learning_rate
    adapter_lr: float = AdapterTrainConfig.learning_rate
    caption_dropout: float = AdapterTrainConfig.caption_dropout
    plus_tokens: int = 0
    resampler_width: int = AdapterTrainConfig.resampler_width
    arch: EncoderArchitecture = field(default_factory=EncoderArchitecture)


def held_out_split(records: list[dict[str, Any]], count: int, seed: int = 0) -> tuple[list[int], list[int]]:
    """``(train, held_out)`` image indices: ``count`` whole subjects (every style of them) held out."""
    keys = identity_keys(records)
    subjects = sorted(set(keys))
    if count >= len(subjects):
        raise ValueError(f"cannot hold out {count} of {len(subjects)} subjects: nothing would be left to train on")
    held = set(random.Random(seed).sample(subjects, count)) if count else set()
    train = [i for i, key in enumerate(keys) if key not in held]
    held_out = [i for i, key in enumerate(keys) if key in held]
    return train, held_out


def twins_of(records: list[dict[str, Any]]) -> list[list[int]]:
    """For each image, the other images of the same subject (its other art style)."""
    keys = identity_keys(records)
    by_key: dict[str, list[int]] = {}
    for i, key in enumerate(keys):
        by_key.setdefault(key, []).append(i)
    return [[j for j in by_key[key] if j != i] for i, key in enumerate(keys)]


def _caption_table(captions: list[list[str]]) -> tuple[list[str], list[list[int]]]:
    texts: list[str] = []
    position: dict[str, int] = {}
    index: list[list[int]] = []
    for variants in captions:
        row = []
        for text in variants:
            if text not in position:
                position[text] = len(texts)
                texts.append(text)
            row.append(position[text])
        index.append(row)
    return texts, index


def train_encoder_stage(
    cfg: CharacterTrainConfig,
    dataset: CaptionedImages,
    base: SavedModel,
    split: tuple[list[int], list[int]],
    accelerator: Accelerator,
) -> tuple[CLIPVisionModelWithProjection, dict[str, float]]:
    """Train (or resume) the image encoder; export it to ``out/image_encoder`` at every checkpoint."""
    final = cfg.work / "encoder-final"
    metrics_path = final / "metrics.json"
    if metrics_path.exists():
        vision = CLIPVisionModelWithProjection.from_pretrained(str(final), use_safetensors=True)
        done: dict[str, float] = json.loads(metrics_path.read_text(encoding="utf-8"))
        return vision.eval(), done
    texts, caption_index = _caption_table(dataset.captions)
    text_features = pooled_text(base.tokenizer, base.text_encoder, texts)
    torch.manual_seed(cfg.seed + 11)
    models = ContrastiveModels(cfg.arch, int(text_features.shape[1]))
    train, held_out = split
    enc_cfg = EncoderTrainConfig(
        batch_size=cfg.encoder_batch, total_steps=cfg.encoder_steps, learning_rate=cfg.encoder_lr, seed=cfg.seed
    )
    keys = identity_keys(dataset.records)
    task = EncoderTask(
        models, dataset.images, caption_index, text_features, keys, torch.tensor(train), enc_cfg, accelerator
    )

    def export(step: int) -> None:
        save_image_encoder(task.ema_models().vision, cfg.out / ENCODER_FOLDER)
        log.info("exported the image encoder of step %d to %s", step, cfg.out / ENCODER_FOLDER)

    loop = LoopConfig(
        steps=cfg.encoder_steps,
        work_dir=cfg.work / "encoder",
        checkpoint_every=cfg.checkpoint_every,
        resume=cfg.resume,
        description="image encoder",
        progress=cfg.progress,
    )
    run_loop(task, loop, on_checkpoint=export)
    trained = task.ema_models()
    metrics: dict[str, float] = {}
    if held_out:
        canonical = torch.tensor([caption_index[i][0] for i in held_out])
        top1, top5 = retrieval_accuracy(
            trained, dataset.images[held_out], text_features[canonical], [keys[i] for i in held_out]
        )
        metrics = {"held_out_caption_top1": top1, "held_out_caption_top5": top5, "held_out_images": len(held_out)}
        log.info("image encoder: held-out image->caption top-1 %.1f%%, top-5 %.1f%%", 100 * top1, 100 * top5)
    save_image_encoder(trained.vision, final)
    save_image_encoder(trained.vision, cfg.out / ENCODER_FOLDER)
    metrics_path.write_text(json.dumps(metrics), encoding="utf-8")
    return trained.vision, metrics


def reference_embeddings(
    cfg: CharacterTrainConfig, vision: CLIPVisionModelWithProjection, images: torch.Tensor
) -> torch.Tensor:
    """``[N, REFERENCE_VIEWS, ...]`` references: view 0 the plain picture, the rest augmented (cached).

    Pooled embeddings ``[dim]`` for the plain adapter, penultimate patch features ``[patches, hidden]``
    for IP-Adapter Plus.
    """
    name = "reference-patches" if cfg.plus_tokens else "reference-embeds"
    path = cfg.work / f"{name}.safetensors"
    if path.exists():
        return load_file(str(path))["embeds"]
    encode = patch_features if cfg.plus_tokens else embed_images
    pixels = images.permute(0, 3, 1, 2).float() / 255.0
    views = [encode(vision, pixels)]
    for view in range(1, REFERENCE_VIEWS):
        views.append(encode(vision, augment(pixels, step_generator(cfg.seed, view, stream=9))))
    embeds = torch.stack(views, dim=1).contiguous()
    save_file({"embeds": embeds}, str(path))
    return embeds


def cached_latents(
    cfg: CharacterTrainConfig, base: SavedModel, images: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    path = cfg.work / "latents.safetensors"
    if path.exists():
        saved = load_file(str(path))
        return saved["mean"], saved["std"]
    with torch.no_grad():
        mean, std = encode_latents(base.vae, images)
    save_file({"mean": mean.contiguous(), "std": std.contiguous()}, str(path))
    return mean, std


def train_adapter_stage(
    cfg: CharacterTrainConfig,
    dataset: CaptionedImages,
    base: SavedModel,
    vision: CLIPVisionModelWithProjection,
    train: list[int],
    accelerator: Accelerator,
) -> None:
    """Train (or resume) the IP-Adapter on the frozen base; export its EMA weights at every checkpoint."""
    embeds = reference_embeddings(cfg, vision, dataset.images)
    latents = cached_latents(cfg, base, dataset.images)
    ada_cfg = AdapterTrainConfig(
        batch_size=cfg.adapter_batch,
        total_steps=cfg.adapter_steps,
        learning_rate=cfg.adapter_lr,
        caption_dropout=cfg.caption_dropout,
        seed=cfg.seed,
        plus_tokens=cfg.plus_tokens,
        resampler_width=cfg.resampler_width,
    )
    task = AdapterTask(
        base.unet,
        base.text_encoder,
        base.tokenizer,
        latents,
        float(base.vae.config["scaling_factor"]),
        embeds,
        blank_features(vision, cfg.arch.image_size, patches=cfg.plus_tokens > 0),
        twins_of(dataset.records),
        dataset.captions,
        torch.tensor(train),
        ada_cfg,
        accelerator,
    )

    def export(step: int) -> None:
        path = save_adapter(task.ema_modules(), cfg.out)
        log.info("exported the IP-Adapter EMA weights of step %d to %s", step, path)

    loop = LoopConfig(
        steps=cfg.adapter_steps,
        work_dir=cfg.work / "adapter",
        checkpoint_every=cfg.checkpoint_every,
        resume=cfg.resume,
        description="ip-adapter",
        progress=cfg.progress,
    )
    run_loop(task, loop, on_checkpoint=export)
    if not (cfg.out / ADAPTER_FILE).exists():
        export(cfg.adapter_steps)


def train_character(cfg: CharacterTrainConfig) -> Path:
    """Both stages, then ``training.json``; safe to call again to resume."""
    if cfg.out.resolve() == cfg.base.resolve():
        raise ValueError("--out must differ from --base: the adapter is a folder of its own")
    base = SavedModel.load(cfg.base)
    base.text_encoder.requires_grad_(False).eval()
    dataset = CaptionedImages.load(cfg.data)
    if dataset.images.shape[1] != cfg.arch.image_size:
        raise ValueError(
            f"{cfg.data}: images are {dataset.images.shape[1]} px, the encoder takes {cfg.arch.image_size}"
        )
    cfg.work.mkdir(parents=True, exist_ok=True)
    cfg.out.mkdir(parents=True, exist_ok=True)
    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    train, held_out = held_out_split(dataset.records, cfg.held_out, cfg.seed)
    vision, encoder_metrics = train_encoder_stage(cfg, dataset, base, (train, held_out), accelerator)
    train_adapter_stage(cfg, dataset, base, vision, train, accelerator)
    if not (cfg.out / ENCODER_FOLDER / "config.json").exists():
        shutil.copytree(cfg.work / "encoder-final", cfg.out / ENCODER_FOLDER, dirs_exist_ok=True)
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(cfg).items()}
    held_keys = sorted({identity_keys(dataset.records)[i] for i in held_out})
    record = {"settings": settings, "held_out_subjects": held_keys, "encoder_metrics": encoder_metrics}
    (cfg.out / "training.json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    return cfg.out
