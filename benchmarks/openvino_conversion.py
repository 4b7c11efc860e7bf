"""Time and peak memory of converting one module for OpenVINO, the way the engine does it.

Why: the conversion of an SD-sized UNet once took over 15 minutes and ~22 GB in-process. The engine now
converts modules of 256 MB or more in a child process (its peak memory leaves with it) from a rebuilt
module around the loaded weights; this script measures that path (or the in-process one, ``--here``)
on limner-tiny or on SD-Turbo-shaped modules built from the configs shipped in
``limner/data/single_file/sd-turbo`` with random weights (nothing downloaded). It prints the seconds,
the child's peak resident memory, this process's peak and resident memory after reading and compiling
the saved model, and one inference's seconds.

    .venv/bin/python benchmarks/openvino_conversion.py --model sd-turbo --part unet --size 512 [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from limner.engines.local import openvino_convert
from limner.weights import LIMNER_TINY

SD_TURBO = Path(openvino_convert.__file__).parents[2] / "data" / "single_file" / "sd-turbo"


def memory_gib() -> tuple[float, float]:
    """This process's resident and peak resident memory, GiB."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 2**20, int(fields["VmHWM"].split()[0]) / 2**20


def build(model: str, part: str) -> Any:
    """The module of ``part`` (``unet``, ``vae-decoder``, ``text-encoder``): limner-tiny's, or SD-Turbo-shaped."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    folder = {"unet": "unet", "vae-decoder": "vae", "text-encoder": "text_encoder"}[part]
    if model == "tiny":
        loader: Any = CLIPTextModel if part == "text-encoder" else (UNet2DConditionModel if part == "unet"
                                                                     else AutoencoderKL)  # fmt: skip
        return loader.from_pretrained(str(LIMNER_TINY / folder)).eval()
    config = json.loads((SD_TURBO / folder / "config.json").read_text())
    torch.manual_seed(0)
    if part == "text-encoder":
        return CLIPTextModel(CLIPTextConfig.from_dict(config)).eval()
    kind: Any = UNet2DConditionModel if part == "unet" else AutoencoderKL
    return kind.from_config(config).eval()


def speed(module: Any, compiled: Any, part: str, shape: tuple[int, ...], rounds: int) -> str:
    """One call of the PyTorch module vs the compiled model, alternating (batch 1; a UNet step, a decode,
    a prompt's encoding): medians and the largest output difference."""
    config = module.config
    if part == "unet":
        inputs: tuple[torch.Tensor, ...] = (torch.randn(1, config.in_channels, *shape), torch.tensor([999.0]),
                                            torch.randn(1, 77, config.cross_attention_dim))  # fmt: skip
        call: Any = lambda: module(*inputs, return_dict=False)[0]  # noqa: E731
    elif part == "vae-decoder":
        inputs = (torch.randn(1, config.latent_channels, *shape),)
        call = lambda: module.decode(*inputs, return_dict=False)[0]  # noqa: E731
    else:
        inputs = (torch.randint(0, config.vocab_size, (1, *shape)),)
        call = lambda: module(*inputs)[0]  # noqa: E731
    times: dict[str, list[float]] = {"torch": [], "openvino": []}
    with torch.inference_mode():
        for _ in range(rounds):
            started = time.perf_counter()
            expected = call()
            times["torch"].append(time.perf_counter() - started)
            started = time.perf_counter()
            got = compiled([tensor.numpy() for tensor in inputs])[0]
            times["openvino"].append(time.perf_counter() - started)
    difference = (torch.from_numpy(got) - expected).abs().max().item()
    pt, ov = statistics.median(times["torch"]), statistics.median(times["openvino"])
    return f"one call: torch {pt:.2f} s, openvino {ov:.2f} s (ratio {ov / pt:.2f}); largest difference {difference:.1e}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=["tiny", "sd-turbo"], default="tiny")
    parser.add_argument("--part", choices=["unet", "vae-decoder", "text-encoder"], default="unet")
    parser.add_argument("--size", type=int, default=64, help="image side in pixels (UNet, VAE decoder)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--precision", choices=["f32", "bf16", "f16"], default="f32",
                        help="OpenVINO's precision (the engine's default: f32 for UNet and text encoder)")  # fmt: skip
    parser.add_argument("--rounds", type=int, default=3, help="timed calls of each, alternating")
    parser.add_argument("--here", action="store_true", help="convert in this process, whatever the module's size")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    module = build(args.model, args.part)
    size = sum(tensor.numel() * tensor.element_size() for tensor in module.state_dict().values())
    openvino_convert.CHILD_PROCESS_MIN_BYTES = 2**62 if args.here else 0
    shape: tuple[int, ...] = (args.size // 8, args.size // 8)
    if args.part == "text-encoder":
        shape = (int(module.config.max_position_embeddings),)
    rss, _ = memory_gib()
    print(f"{args.model} {args.part}: {size / 2**30:.2f} GiB of weights; this process {rss:.1f} GiB", flush=True)
    with tempfile.TemporaryDirectory(prefix="limner-ov-") as cache:
        path = Path(cache) / "model" / "x".join(map(str, shape)) / f"{args.part}.xml"
        started = time.perf_counter()
        child_peak = openvino_convert.convert(module, args.part, shape, path, args.model, args.threads)
        seconds = time.perf_counter() - started
        rss, peak = memory_gib()
        where = f"in a child process, its peak {child_peak / 2**30:.1f} GiB" if child_peak else "in this process"
        print(f"converted {where} in {seconds:.0f} s; this process now {rss:.1f} GiB (peak {peak:.1f})", flush=True)
        import openvino

        started = time.perf_counter()
        core = openvino.Core()
        settings = {"INFERENCE_NUM_THREADS": args.threads, "INFERENCE_PRECISION_HINT": args.precision}
        compiled = core.compile_model(core.read_model(str(path)), "CPU", settings)
        rss, peak = memory_gib()
        print(f"read and compiled in {time.perf_counter() - started:.1f} s; this process {rss:.1f} GiB "
              f"(peak {peak:.1f})", flush=True)  # fmt: skip
        print(speed(module, compiled, args.part, shape, args.rounds), flush=True)
        del compiled


if __name__ == "__main__":
    main()
