"""CPU speed of one image: raw diffusers vs limner on PyTorch vs limner on OpenVINO, in one process.

Why in one process, alternating: these machines are noisy, so absolute times drift; the same
request runs on each contender in turn, round after round, and the medians of the per-round ratios
against raw diffusers are printed (with min-max), plus the mean pixel difference of OpenVINO
against PyTorch (the issue's bar: <= 1/255). limner on OpenVINO runs the UNet, the VAE decoder and the
text encoder there; the text encoder is also timed alone (PyTorch vs OpenVINO, one prompt pair).

Default: limner-tiny, 64x64, 20 steps, guidance 4 (its own defaults). ``--sd-turbo`` adds an
SD-Turbo-shaped model (UNet/VAE/text encoder built from configs with random weights, nothing
downloaded), 512x512, 1 step, guidance 0, with a fourth contender: OpenVINO plus fast decode (a
TAESD-shaped tiny autoencoder, random weights). It needs about 24 GB of memory (three pipelines of 5 GB
each, the compiled OpenVINO UNet's 4.4 GB, and its conversion in a child process peaking at 6.5 GB,
about 4 minutes on 2 cores); ``--lean`` leaves limner on PyTorch out (its pixels equal raw
diffusers') to fit in about 17 GB. ``benchmarks/openvino_conversion.py`` measures the modules alone.

    .venv/bin/python benchmarks/cpu_speed.py [--rounds 5] [--threads 2] [--sd-turbo [--lean]] [--skip-tiny]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from diffusers import StableDiffusionPipeline

from limner.config import Settings
from limner.core.requests import DecodeMode, GenerationRequest
from limner.engines.local.engine import LocalEngine
from limner.weights import LIMNER_TINY, LIMNER_TINY_DEFAULTS

PROMPT = "an emoji of a red apple"
SEED = 7


def raw_diffusers(folder: Path, size: int, steps: int, guidance: float) -> Callable[[], np.ndarray]:
    pipeline = StableDiffusionPipeline.from_pretrained(str(folder), use_safetensors=True)
    pipeline.set_progress_bar_config(disable=True)

    def run() -> np.ndarray:
        generator = torch.Generator().manual_seed(SEED)
        with torch.inference_mode():
            image = pipeline(PROMPT, num_inference_steps=steps, guidance_scale=guidance, width=size, height=size,
                             generator=generator).images[0]  # fmt: skip
        return np.asarray(image, dtype=np.float64)

    return run


def limner_engine(folder: Path, backend: str, threads: int, tiny_vae: Path | None = None) -> LocalEngine:
    cache = Path(tempfile.mkdtemp(prefix="limner-ov-"))
    settings = Settings(default_model=str(folder), device="cpu", backend=backend, threads=threads,
                        openvino_cache_dir=cache, tiny_vae=str(tiny_vae) if tiny_vae else None,
                        _env_file=None)  # type: ignore[call-arg, arg-type]  # fmt: skip
    return LocalEngine(settings)


def limner(
    engine: LocalEngine, size: int, steps: int, guidance: float, decode: str = "full"
) -> Callable[[], np.ndarray]:
    request = GenerationRequest(prompt=PROMPT, steps=steps, guidance_scale=guidance, width=size, height=size,
                                seed=SEED, decode=DecodeMode(decode))  # fmt: skip

    def run() -> np.ndarray:
        return np.asarray(engine.run(request).images[0].image, dtype=np.float64)

    run()  # load (and for OpenVINO convert) outside the timed rounds
    return run


def compare(
    name: str, folder: Path, setup: tuple[int, int, float], rounds: int, threads: int, tiny_vae: Path | None = None,
    with_torch: bool = True,
) -> None:  # fmt: skip
    """Time each contender in turn; OpenVINO is built first, so its conversions finish before the
    other pipelines take their memory. ``tiny_vae`` adds OpenVINO with fast decode; ``with_torch=False``
    leaves out limner on PyTorch (its pixels equal raw diffusers', tested), to fit in less memory."""
    size, steps, guidance = setup
    torch.set_num_threads(threads)
    openvino = limner_engine(folder, "openvino", threads, tiny_vae)
    ours = {"limner openvino": limner(openvino, size, steps, guidance)}
    if tiny_vae is not None:
        ours["limner openvino + fast decode"] = limner(openvino, size, steps, guidance, "fast")
    contenders = {"raw diffusers": raw_diffusers(folder, size, steps, guidance)}
    if with_torch:
        contenders["limner torch"] = limner(limner_engine(folder, "torch", threads), size, steps, guidance)
    contenders.update(ours)
    times: dict[str, list[float]] = {key: [] for key in contenders}
    images: dict[str, np.ndarray] = {}
    for _ in range(rounds):
        for key, run in contenders.items():
            started = time.perf_counter()
            images[key] = run()
            times[key].append(time.perf_counter() - started)
    print(f"\n{name}: {size}x{size}, {steps} steps, guidance {guidance:g}, {threads} threads, {rounds} rounds")
    for key in contenders:
        ratios = [value / raw for value, raw in zip(times[key], times["raw diffusers"], strict=True)]
        print(f"  {key:30s} median {statistics.median(times[key]):.3f}s  ratio to raw {statistics.median(ratios):.2f}"
              f" (min {min(ratios):.2f}, max {max(ratios):.2f})")  # fmt: skip
    against = "limner torch" if with_torch else "raw diffusers"
    difference = np.abs(images["limner openvino"] - images[against]).mean()
    print(f"  mean pixel difference OpenVINO vs {against}: {difference:.3f}/255 (bar <= 1)")
    text_encoder_speed(folder, rounds, threads)


def text_encoder_speed(folder: Path, rounds: int, threads: int) -> None:
    """The text encoder alone, PyTorch vs OpenVINO: a prompt and a negative prompt at the tokenizer's
    window (what every run encodes once), alternating; the ratio and the largest output difference."""
    from transformers import CLIPTextModel

    from limner.engines.local.openvino_unet import OpenVinoUNets

    encoder = CLIPTextModel.from_pretrained(str(folder / "text_encoder")).eval()
    stand_in = OpenVinoUNets(Path(tempfile.mkdtemp(prefix="limner-ov-")), threads).for_text_encoder(encoder)
    ids = torch.randint(0, encoder.config.vocab_size, (2, int(encoder.config.max_position_embeddings)))
    times: dict[str, list[float]] = {"torch": [], "openvino": []}
    with torch.inference_mode():
        stand_in(ids)  # convert outside the timed rounds
        for _ in range(rounds):
            for key, module in (("torch", encoder), ("openvino", stand_in)):
                started = time.perf_counter()
                for _ in range(5):
                    output = module(ids, output_hidden_states=True)
                times[key].append((time.perf_counter() - started) / 5)
        difference = (stand_in(ids).last_hidden_state - encoder(ids).last_hidden_state).abs().max().item()
    ratios = [ov / pt for ov, pt in zip(times["openvino"], times["torch"], strict=True)]
    print(f"  text encoder alone (batch 2 x {ids.shape[1]} tokens): torch {statistics.median(times['torch']) * 1e3:.1f}"
          f" ms, openvino {statistics.median(times['openvino']) * 1e3:.1f} ms, ratio {statistics.median(ratios):.2f}"
          f" (min {min(ratios):.2f}, max {max(ratios):.2f}); largest difference {difference:.1e}")  # fmt: skip
    del output


def taesd_shaped(folder: Path) -> Path:
    """A tiny autoencoder with TAESD's shapes (diffusers' ``AutoencoderTiny`` defaults), random weights."""
    from diffusers import AutoencoderTiny

    torch.manual_seed(0)
    AutoencoderTiny().save_pretrained(folder / "taesd-shaped", safe_serialization=True)
    return folder / "taesd-shaped"


def sd_turbo_shaped(folder: Path) -> Path:
    """An SD-Turbo-shaped diffusers folder (SD 2.1 UNet, VAE and OpenCLIP-H text encoder) with random weights."""
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    from limner.testing.tiny_models import byte_level_clip_tokenizer

    torch.manual_seed(0)
    unet = UNet2DConditionModel(sample_size=64, cross_attention_dim=1024, attention_head_dim=(5, 10, 20, 20),
                                use_linear_projection=True)  # fmt: skip
    vae = AutoencoderKL(block_out_channels=(128, 256, 512, 512), down_block_types=("DownEncoderBlock2D",) * 4,
                        up_block_types=("UpDecoderBlock2D",) * 4, latent_channels=4, layers_per_block=2,
                        sample_size=512)  # fmt: skip
    text = CLIPTextModel(CLIPTextConfig(hidden_size=1024, intermediate_size=4096, num_attention_heads=16,
                                        num_hidden_layers=23, projection_dim=1024, hidden_act="gelu"))  # fmt: skip
    tokenizer: CLIPTokenizer = byte_level_clip_tokenizer(folder / "tokenizer-source")
    pipeline = StableDiffusionPipeline(vae=vae, text_encoder=text, tokenizer=tokenizer, unet=unet,
                                       scheduler=EulerDiscreteScheduler(), safety_checker=None,
                                       feature_extractor=None, requires_safety_checker=False)  # fmt: skip
    pipeline.save_pretrained(folder / "sd-turbo-shaped", safe_serialization=True)
    return folder / "sd-turbo-shaped"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--sd-turbo", action="store_true", help="also an SD-Turbo-shaped model (slow, ~24 GB)")
    parser.add_argument("--lean", action="store_true", help="SD-Turbo without limner on PyTorch (~17 GB)")
    parser.add_argument("--skip-tiny", action="store_true", help="leave out limner-tiny")
    args = parser.parse_args()
    steps, guidance, size = (LIMNER_TINY_DEFAULTS[key] for key in ("num_inference_steps", "guidance_scale", "width"))
    if not args.skip_tiny:
        compare("limner-tiny", LIMNER_TINY, (int(size), int(steps), float(guidance)), args.rounds, args.threads)
    if args.sd_turbo:
        with tempfile.TemporaryDirectory() as scratch:
            folder = sd_turbo_shaped(Path(scratch))
            compare("SD-Turbo shapes", folder, (512, 1, 0.0), args.rounds, args.threads, taesd_shaped(Path(scratch)),
                    with_torch=not args.lean)  # fmt: skip


if __name__ == "__main__":
    main()
