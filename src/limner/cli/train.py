"""``limner train ...``: train limner's own base model, or fine-tune a model on a subject.

Why the commands live here and not beside the training code: ``limner --help`` builds every
command, and the training code imports torch, diffusers and transformers. The options are
declared here with typer alone; each command imports ``limner.training`` / ``limner.finetune``
in its body. ``limner.training.cli`` re-exports :data:`train_app` for ``python -m limner.training.cli``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from limner.cli.errors import user_errors

train_app = typer.Typer(rich_markup_mode=None, help="Train limner's own models.", no_args_is_help=True)


@train_app.callback()
def _group() -> None:
    """Train limner's own models (limner-tiny), or fine-tune a model on a subject (DreamBooth)."""


def _prepare_training(threads: int) -> None:
    """What every training command of limner's own models sets first: INFO logs with times, the CPU
    thread count (0: torch's default) and, on CUDA, TF32 matmuls (several times faster on Ampere+
    GPUs, far below these models' noise floor)."""
    import logging

    import torch

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if threads:
        torch.set_num_threads(threads)
    if torch.cuda.is_available():
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


@train_app.command("base")
def base(
    data: Annotated[Path, typer.Option(help="Dataset folder (images.npz + captions.jsonl).")] = Path(
        ".cache/emoji-dataset"
    ),
    out: Annotated[Path, typer.Option(help="Where the diffusers folder is written.")] = Path("output/limner-tiny"),
    work: Annotated[Path, typer.Option(help="Checkpoints, latents and tokenizer of this run.")] = Path(
        ".cache/limner-train"
    ),
    vae_steps: Annotated[int, typer.Option(help="Autoencoder training steps.")] = 2000,
    steps: Annotated[int, typer.Option(help="Text encoder + UNet training steps.")] = 6000,
    vae_batch: Annotated[int, typer.Option()] = 32,
    batch: Annotated[int, typer.Option(help="Diffusion batch size.")] = 64,
    checkpoint_every: Annotated[int, typer.Option(help="Checkpoint (and export) every N steps.")] = 500,
    seed: Annotated[int, typer.Option()] = 0,
    resume: Annotated[bool, typer.Option("--resume/--fresh", help="Continue from checkpoints in --work.")] = True,
    threads: Annotated[int, typer.Option(help="CPU threads for torch (0: torch's default).")] = 0,
    bpe: Annotated[
        Path | None,
        typer.Option(help="CLIP merges file (default: the recipe's; fetched from open_clip_torch's wheel if missing)."),
    ] = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress")] = True,
    lr: Annotated[
        float | None, typer.Option(help="Peak learning rate of the diffusion stage (default: the recipe's).")
    ] = None,
    warmup: Annotated[
        int | None, typer.Option(help="Linear warm-up steps before the cosine decay (default: the recipe's).")
    ] = None,
    noise_offset: Annotated[
        float | None,
        typer.Option(
            help="Std of a per-channel constant added to the training noise (0 turns it off; default: the recipe's)."
        ),
    ] = None,
    init_from: Annotated[
        Path | None,
        typer.Option(help="Start a new diffusion phase from this saved model (its VAE and tokenizer are kept)."),
    ] = None,
) -> None:
    """Train the limner-tiny base model: VAE, then text encoder + UNet, exporting EMA weights."""
    from limner.training.base import BaseTrainConfig, train_base

    _prepare_training(threads)
    # Options left out take BaseTrainConfig's defaults (its class attributes), where the recipe is written once.
    recipe = BaseTrainConfig
    cfg = BaseTrainConfig(
        data=data, out=out, work=work, vae_steps=vae_steps, unet_steps=steps, vae_batch=vae_batch, unet_batch=batch,
        checkpoint_every=checkpoint_every, seed=seed, resume=resume, progress=progress, init_from=init_from,
        bpe_path=recipe.bpe_path if bpe is None else bpe,
        learning_rate=recipe.learning_rate if lr is None else lr,
        warmup_steps=recipe.warmup_steps if warmup is None else warmup,
        noise_offset=recipe.noise_offset if noise_offset is None else noise_offset,
    )  # fmt: skip
    try:
        folder = train_base(cfg)
    except (FileNotFoundError, ValueError) as error:
        raise typer.BadParameter(str(error)) from error
    typer.echo(f"model saved to {folder}")


@train_app.command("ip-adapter")
def ip_adapter(
    data: Annotated[Path, typer.Option(help="Dataset folder (images.npz + captions.jsonl).")] = Path(
        ".cache/emoji-dataset"
    ),
    base: Annotated[
        Path | None, typer.Option(help="The frozen base model folder (default: the shipped limner-tiny).")
    ] = None,
    out: Annotated[Path, typer.Option(help="Adapter folder: ip-adapter.safetensors + image_encoder/.")] = Path(
        "output/limner-tiny-character"
    ),
    work: Annotated[Path, typer.Option(help="Checkpoints and caches of this run.")] = Path(".cache/character-train"),
    encoder_steps: Annotated[int, typer.Option(help="Contrastive image-encoder steps.")] = 1200,
    steps: Annotated[int, typer.Option(help="IP-Adapter steps.")] = 2600,
    encoder_batch: Annotated[int, typer.Option()] = 128,
    batch: Annotated[int, typer.Option(help="IP-Adapter batch size.")] = 32,
    held_out: Annotated[int, typer.Option(help="Subjects kept out of both stages, for the benchmark.")] = 100,
    checkpoint_every: Annotated[int, typer.Option(help="Checkpoint (and export) every N steps.")] = 250,
    seed: Annotated[int, typer.Option()] = 0,
    resume: Annotated[bool, typer.Option("--resume/--fresh", help="Continue from checkpoints in --work.")] = True,
    threads: Annotated[int, typer.Option(help="CPU threads for torch (0: torch's default).")] = 0,
    progress: Annotated[bool, typer.Option("--progress/--no-progress")] = True,
    lr: Annotated[float | None, typer.Option(help="Peak learning rate of the adapter (default: the recipe's).")] = None,
    caption_dropout: Annotated[
        float | None, typer.Option(help="Share of adapter samples with an empty caption (default: the recipe's).")
    ] = None,
    plus_tokens: Annotated[
        int,
        typer.Option(help="IP-Adapter Plus: tokens of a resampler over the encoder's patches (0: the plain adapter)."),
    ] = 0,
) -> None:
    """Train an image encoder and an IP-Adapter for a frozen base model (limner-tiny-character)."""
    from limner.training.character import CharacterTrainConfig, train_character
    from limner.weights import LIMNER_TINY

    _prepare_training(threads)
    cfg = CharacterTrainConfig(
        data=data, base=base or LIMNER_TINY, out=out, work=work, encoder_steps=encoder_steps, adapter_steps=steps,
        encoder_batch=encoder_batch, adapter_batch=batch, held_out=held_out, seed=seed,
        checkpoint_every=checkpoint_every, resume=resume, progress=progress,
        adapter_lr=CharacterTrainConfig.adapter_lr if lr is None else lr,
        caption_dropout=CharacterTrainConfig.caption_dropout if caption_dropout is None else caption_dropout,
        plus_tokens=plus_tokens,
    )  # fmt: skip
    try:
        folder = train_character(cfg)
    except (FileNotFoundError, ValueError) as error:
        raise typer.BadParameter(str(error)) from error
    typer.echo(f"adapter saved to {folder}; use it with --ip-adapter {folder / 'ip-adapter.safetensors'}")


@train_app.command("edit")
def edit(
    data: Annotated[Path, typer.Option(help="Dataset folder (images.npz + captions.jsonl).")] = Path(
        ".cache/emoji-dataset"
    ),
    base: Annotated[
        Path | None, typer.Option(help="Text-to-image model folder to start from (default: the shipped limner-tiny).")
    ] = None,
    out: Annotated[Path, typer.Option(help="Where the InstructPix2Pix folder is written.")] = Path(
        "output/limner-tiny-edit"
    ),
    work: Annotated[Path, typer.Option(help="Checkpoints and cached latents of this run.")] = Path(".cache/edit-train"),
    steps: Annotated[int, typer.Option(help="UNet training steps.")] = 5000,
    batch: Annotated[int, typer.Option(help="Triplets per step.")] = 32,
    lr: Annotated[float, typer.Option(help="Peak learning rate (linear warm-up, cosine decay).")] = 3e-4,
    warmup: Annotated[int, typer.Option(help="Warm-up steps.")] = 200,
    colours_per_image: Annotated[int, typer.Option(help="Colour edits made from each emoji.")] = 2,
    limit: Annotated[int | None, typer.Option(help="Use only the first N emoji (quick checks).")] = None,
    checkpoint_every: Annotated[int, typer.Option(help="Checkpoint (and export) every N steps.")] = 250,
    seed: Annotated[int, typer.Option()] = 0,
    resume: Annotated[bool, typer.Option("--resume/--fresh", help="Continue from checkpoints in --work.")] = True,
    threads: Annotated[int, typer.Option(help="CPU threads for torch (0: torch's default).")] = 0,
    progress: Annotated[bool, typer.Option("--progress/--no-progress")] = True,
) -> None:
    """Train an instruction-edit model (InstructPix2Pix) from a base model on emoji edit triplets."""
    from limner.training.edit import EditTrainConfig, train_edit
    from limner.weights import LIMNER_TINY

    _prepare_training(threads)
    cfg = EditTrainConfig(
        data=data, base=base or LIMNER_TINY, out=out, work=work, steps=steps, batch_size=batch, learning_rate=lr,
        warmup_steps=warmup, colours_per_image=colours_per_image, limit=limit, checkpoint_every=checkpoint_every,
        seed=seed, resume=resume, progress=progress,
    )  # fmt: skip
    try:
        folder = train_edit(cfg)
    except (FileNotFoundError, ValueError) as error:
        raise typer.BadParameter(str(error)) from error
    typer.echo(f"edit model saved to {folder}; use it with: limner edit PICTURE 'make it blue' --model {folder}")


@train_app.command("dreambooth")
def dreambooth(
    instance_images: Annotated[Path, typer.Option("--instance-images", help="Folder or zip of subject pictures.")],
    instance_prompt: Annotated[str, typer.Option("--instance-prompt", help="e.g. 'a photo of sks dog'.")],
    name: Annotated[str, typer.Option("--name", help="Register the result under this name.")],
    base: Annotated[str | None, typer.Option("--base", help="Base model (default: LIMNER_DEFAULT_MODEL).")] = None,
    class_prompt: Annotated[str | None, typer.Option("--class-prompt", help="e.g. 'a photo of a dog'.")] = None,
    prior_preservation: Annotated[bool, typer.Option("--prior-preservation", help="Keep the class intact.")] = False,
    num_class_images: Annotated[int, typer.Option(help="Class pictures made by the base model (cached).")] = 50,
    classes: Annotated[bool, typer.Option("--classes", help="One sub-folder per class, one token each.")] = False,
    max_per_class: Annotated[int, typer.Option(help="Cap on pictures per class.")] = 50,
    steps: Annotated[int, typer.Option(help="Optimisation steps.")] = 800,
    learning_rate: Annotated[float, typer.Option(help="Learning rate.")] = 1e-4,
    rank: Annotated[int, typer.Option(help="LoRA rank.")] = 8,
    full: Annotated[bool, typer.Option("--full", help="Train the whole UNet instead of a LoRA.")] = False,
    resolution: Annotated[int | None, typer.Option(help="Training size (default: the model's).")] = None,
    batch_size: Annotated[int, typer.Option(help="Pictures per step.")] = 1,
    gradient_accumulation: Annotated[int, typer.Option(help="Micro-batches per step.")] = 1,
    gradient_checkpointing: Annotated[bool, typer.Option(help="Trade compute for memory.")] = False,
    mixed_precision: Annotated[str, typer.Option(help="no, fp16 or bf16 (GPU only).")] = "no",
    use_8bit_adam: Annotated[bool, typer.Option(help="bitsandbytes 8-bit AdamW.")] = False,
    seed: Annotated[int, typer.Option(help="Seed of every random draw.")] = 0,
    checkpoint_every: Annotated[int, typer.Option(help="Checkpoint every N steps.")] = 100,
    validation_every: Annotated[int, typer.Option(help="Validation picture every N steps (0: none).")] = 0,
    validation_prompt: Annotated[str | None, typer.Option(help="Prompt of the validation pictures.")] = None,
    work_dir: Annotated[Path | None, typer.Option(help="Checkpoints (a rerun resumes from them).")] = None,
) -> None:
    """Fine-tune BASE on your subject (DreamBooth, LoRA by default) and register it as NAME."""
    from limner.config import Settings
    from limner.finetune.config import DreamBoothConfig
    from limner.finetune.dataset import extract_zip
    from limner.presets import invalid_request_from
    from limner.services.store import local_store
    from limner.services.training import TrainingRun, train_and_register

    settings = Settings()
    with user_errors():
        from pydantic import ValidationError

        try:
            cfg = DreamBoothConfig(
                instance_prompt=instance_prompt, class_prompt=class_prompt, prior_preservation=prior_preservation,
                num_class_images=num_class_images, classes_mode=classes, max_images_per_class=max_per_class,
                steps=steps, learning_rate=learning_rate, rank=rank, full_finetune=full, resolution=resolution,
                batch_size=batch_size, gradient_accumulation=gradient_accumulation,
                gradient_checkpointing=gradient_checkpointing, mixed_precision=mixed_precision,  # type: ignore[arg-type]
                use_8bit_adam=use_8bit_adam, seed=seed, checkpoint_every=checkpoint_every,
                validation_every=validation_every, validation_prompt=validation_prompt,
            )  # fmt: skip
        except ValidationError as exc:
            raise invalid_request_from(exc) from exc
        base_model = base or settings.default_model
        with local_store(settings) as store, tempfile.TemporaryDirectory(prefix="limner-dataset-") as scratch:
            with store.sessions() as session:
                store.models.check_name(session, name)
            folder = instance_images
            if instance_images.suffix.lower() == ".zip":
                folder = extract_zip(instance_images, Path(scratch), settings.max_request_bytes * 40)
            run = TrainingRun(name=name, base=base_model, config=cfg, dataset=folder,
                              work_dir=work_dir or store.trainings_dir / name)  # fmt: skip
            model, result = train_and_register(settings, store.models, store.model_lookup(), store.sessions, run,
                                               show_progress=True)  # fmt: skip
    if result.tokens:  # --classes: one token per class folder, to write in prompts
        table = Table("class", "token")
        for class_name, token in result.tokens.items():
            table.add_row(class_name, token)
        Console().print(table)
    typer.echo(f"registered {model.kind} {model.name} (base {base_model}); use it with "
               + (f"--lora {model.name}" if model.kind == "lora" else f"--model {model.name}"))  # fmt: skip
