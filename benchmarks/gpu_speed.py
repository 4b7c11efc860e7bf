"""CUDA speed of one image: raw diffusers vs limner's tuned engine, alternating in one process.

Why: the CUDA path (bf16/fp16, SDPA, channels-last, fused QKV, opt-in ``torch.compile``; see
``limner/engines/local/gpu_tuning.py``) must be measured against what a user gets from diffusers
with no tuning on the same card, in the same process, round after round (absolute times drift).

Model: an SD-Turbo-shaped pipeline (SD 2.1 UNet, VAE, OpenCLIP-H-sized text encoder) built from
configs with random weights, so nothing is downloaded; 512x512, 1 step, guidance 0, and a 20-step
512x512 run. Contenders: raw diffusers (half precision, its defaults), limner (channels-last + fused
QKV, the defaults on CUDA), and limner with ``--compile`` (torch.compile of the UNet and VAE
decoder; its first run of each shape compiles and is left out).

    .venv/bin/python benchmarks/gpu_speed.py [--rounds 5] [--compile]

Prints the median ratio of each contender's time to raw diffusers (lower is faster) with min-max,
and the mean pixel difference against raw diffusers. Exits with a message where CUDA is absent.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

PROMPT = "a watercolor fox in the snow"
SEED = 7


def timed(run: Callable[[], np.ndarray]) -> tuple[float, np.ndarray]:
    torch.cuda.synchronize()
    started = time.perf_counter()
    pixels = run()
    torch.cuda.synchronize()
    return time.perf_counter() - started, pixels


def raw_diffusers(folder: Path, steps: int, guidance: float) -> Callable[[], np.ndarray]:
    from diffusers import StableDiffusionPipeline

    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    pipeline = StableDiffusionPipeline.from_pretrained(str(folder), torch_dtype=dtype).to("cuda")
    pipeline.set_progress_bar_config(disable=True)

    def run() -> np.ndarray:
        generator = torch.Generator().manual_seed(SEED)
        image = pipeline(PROMPT, num_inference_steps=steps, guidance_scale=guidance, width=512, height=512,
                         generator=generator).images[0]  # fmt: skip
        return np.asarray(image, dtype=np.float64)

    return run


def limner(folder: Path, steps: int, guidance: float, compile_models: bool) -> Callable[[], np.ndarray]:
    from limner.config import Settings
    from limner.core.requests import GenerationRequest
    from limner.engines.local.engine import LocalEngine

    settings = Settings(default_model=str(folder), device="cuda", compile=compile_models, _env_file=None)  # type: ignore[call-arg]
    engine = LocalEngine(settings)
    request = GenerationRequest(prompt=PROMPT, steps=steps, guidance_scale=guidance, width=512, height=512, seed=SEED)

    def run() -> np.ndarray:
        return np.asarray(engine.run(request).images[0].image, dtype=np.float64)

    run()  # load, and compile each shape once
    return run


def compare(folder: Path, steps: int, guidance: float, rounds: int, compile_models: bool) -> None:
    contenders = {
        "raw diffusers": raw_diffusers(folder, steps, guidance),
        "limner": limner(folder, steps, guidance, False),
    }
    if compile_models:
        contenders["limner --compile"] = limner(folder, steps, guidance, True)
    for run in contenders.values():
        run()  # warm the kernels
    times: dict[str, list[float]] = {name: [] for name in contenders}
    pixels: dict[str, np.ndarray] = {}
    for _ in range(rounds):
        for name, run in contenders.items():
            seconds, pixels[name] = timed(run)
            times[name].append(seconds)
    base = times["raw diffusers"]
    print(f"\n{steps} step(s), guidance {guidance}, 512x512, {rounds} rounds; raw diffusers median "
          f"{statistics.median(base):.3f} s")  # fmt: skip
    for name in contenders:
        ratios = [mine / raw for mine, raw in zip(times[name], base, strict=True)]
        diff = np.abs(pixels[name] - pixels["raw diffusers"]).mean()
        print(f"  {name:18s} {statistics.median(ratios):.2f}x raw ({min(ratios):.2f}-{max(ratios):.2f}), "
              f"mean pixel difference {diff:.2f}/255")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--compile", action="store_true", help="also limner with torch.compile (slow first runs)")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit("no CUDA device: this benchmark measures the GPU path (see benchmarks/cpu_speed.py for the CPU)")
    sys.path.insert(0, str(Path(__file__).parent))
    from cpu_speed import sd_turbo_shaped

    with tempfile.TemporaryDirectory() as scratch:
        folder = sd_turbo_shaped(Path(scratch))
        compare(folder, 1, 0.0, args.rounds, args.compile)
        compare(folder, 20, 7.0, args.rounds, args.compile)


if __name__ == "__main__":
    main()
