"""DreamBooth/LoRA training speed and peak memory, beside a bare peft+diffusers loop on the same model.

Prints steps/s of limner's trainer (data caching, seeded draws, checkpoint bookkeeping included) and
of a minimal hand loop doing the same forward/backward, and their ratio, in one run on one machine;
peak resident memory (CPU) or peak CUDA memory. With a GPU, also SD1.5-shaped random weights at 512px.

    .venv/bin/python benchmarks/finetune_speed.py [--steps 30]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image

from limner.engines.local.device import choose_placement
from limner.engines.local.model_refs import builtin_model_path
from limner.finetune.config import DreamBoothConfig
from limner.finetune.dataset import SubjectImages
from limner.finetune.trainer import run_dreambooth


def bare_loop(model: str, steps: int, side: int, device: torch.device) -> float:
    """The reference: peft LoRA on the UNet, random latents, plain AdamW; no caching or bookkeeping."""
    from diffusers import StableDiffusionPipeline
    from peft import LoraConfig

    pipe = StableDiffusionPipeline.from_pretrained(model).to(device)
    unet = pipe.unet
    unet.requires_grad_(False)
    unet.add_adapter(LoraConfig(r=8, lora_alpha=8, target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    params = [p for p in unet.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    latent_side = side // pipe.vae_scale_factor
    channels = unet.config.in_channels
    hidden = torch.randn(1, pipe.tokenizer.model_max_length, unet.config.cross_attention_dim, device=device)
    started = time.perf_counter()
    for _ in range(steps):
        latents = torch.randn(1, channels, latent_side, latent_side, device=device)
        timesteps = torch.randint(0, 1000, (1,), device=device)
        loss = torch.nn.functional.mse_loss(unet(latents, timesteps, encoder_hidden_states=hidden).sample, latents)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return steps / (time.perf_counter() - started)


def limner_loop(model: str, steps: int, side: int) -> float:
    pictures = [Image.new("RGB", (side, side), color) for color in ("red", "green", "blue")]
    cfg = DreamBoothConfig(instance_prompt="a sks emoji", steps=steps, rank=8, checkpoint_every=steps, resolution=side)
    placement = choose_placement("auto", "float32")
    with tempfile.TemporaryDirectory() as work:
        started = time.perf_counter()
        run_dreambooth(model, SubjectImages(pictures, [""] * 3), cfg, Path(work) / "w", Path(work) / "o", placement)
        return steps / (time.perf_counter() - started)


def peak_memory() -> str:
    if torch.cuda.is_available():
        return f"{torch.cuda.max_memory_allocated() / 2**30:.2f} GiB CUDA"
    return f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB RSS"


def sd15_shaped(folder: Path) -> str:
    """SD1.5-shaped random weights (the real configs' shapes), for GPU timings at 512px."""
    from diffusers import AutoencoderKL, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from limner.testing.tiny_models import byte_level_clip_tokenizer, sd_scheduler

    tokenizer = byte_level_clip_tokenizer(folder / "tokenizer")
    unet = UNet2DConditionModel(cross_attention_dim=768, sample_size=64)
    vae = AutoencoderKL(
        block_out_channels=(128, 256, 512, 512),
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        latent_channels=4,
        layers_per_block=2,
    )
    text = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=768,
            num_hidden_layers=12,
            num_attention_heads=12,
            intermediate_size=3072,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
    )
    StableDiffusionPipeline(
        unet=unet,
        vae=vae,
        text_encoder=text,
        tokenizer=tokenizer,
        scheduler=sd_scheduler(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    ).save_pretrained(str(folder))
    return str(folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    cases = [("limner-tiny 64px", str(builtin_model_path("limner-tiny")), 64)]
    if device.type == "cuda":
        cases.append(("SD1.5-shaped 512px", sd15_shaped(Path(tempfile.mkdtemp())), 512))
    print(f"{'model':22} {'limner steps/s':>15} {'bare steps/s':>13} {'ratio':>7}  peak memory")
    for label, model, side in cases:
        ours = limner_loop(model, args.steps, side)
        bare = bare_loop(model, args.steps, side, device)
        print(f"{label:22} {ours:15.2f} {bare:13.2f} {ours / bare:7.2f}  {peak_memory()}")


if __name__ == "__main__":
    main()
