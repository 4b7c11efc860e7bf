"""The ``limner train`` Typer sub-app (mounted by the main CLI as ``train``).

Why a sub-app here: the training commands live with the training code, and the main CLI only
mounts ``train_app``. ``python -m limner.training.cli base ...`` works too, without the main CLI.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import torch
import typer

from limner.training.base import BaseTrainConfig, train_base
from limner.training.tokenizer import DEFAULT_BPE_PATH

train_app = typer.Typer(help="Train limner's own models.", no_args_is_help=True)


@train_app.callback()
def _group() -> None:
    """Train limner's own models (limner-tiny)."""


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
    bpe: Annotated[Path, typer.Option(help="CLIP merges file (fetched from the open_clip_torch wheel if missing).")] = (
        DEFAULT_BPE_PATH
    ),
    progress: Annotated[bool, typer.Option("--progress/--no-progress")] = True,
    lr: Annotated[float, typer.Option(help="Peak learning rate of the diffusion stage.")] = (
        BaseTrainConfig.learning_rate
    ),
    warmup: Annotated[int, typer.Option(help="Linear warm-up steps before the cosine decay.")] = (
        BaseTrainConfig.warmup_steps
    ),
    noise_offset: Annotated[
        float, typer.Option(help="Std of a per-channel constant added to the training noise (0 turns it off).")
    ] = BaseTrainConfig.noise_offset,
    init_from: Annotated[
        Path | None,
        typer.Option(help="Start a new diffusion phase from this saved model (its VAE and tokenizer are kept)."),
    ] = None,
) -> None:
    """Train the limner-tiny base model: VAE, then text encoder + UNet, exporting EMA weights."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if threads:
        torch.set_num_threads(threads)
    if torch.cuda.is_available():
        # TF32 matmuls: several times faster on Ampere+ GPUs, far below this model's noise floor.
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    cfg = BaseTrainConfig(
        data=data,
        out=out,
        work=work,
        vae_steps=vae_steps,
        unet_steps=steps,
        vae_batch=vae_batch,
        unet_batch=batch,
        checkpoint_every=checkpoint_every,
        seed=seed,
        resume=resume,
        progress=progress,
        bpe_path=bpe,
        learning_rate=lr,
        warmup_steps=warmup,
        noise_offset=noise_offset,
        init_from=init_from,
    )
    try:
        folder = train_base(cfg)
    except (FileNotFoundError, ValueError) as error:
        raise typer.BadParameter(str(error)) from error
    typer.echo(f"model saved to {folder}")


if __name__ == "__main__":
    train_app()
