"""A LoRA on the OpenVINO UNet: what a new weight costs, and what the patched graph costs per step.

Why: a LoRA set is converted once with its scales as an input of the graph
(:mod:`limner.engines.local.openvino_convert`), so moving a LoRA's weight must cost one call, not a
conversion; the price is the low-rank products at every step, which a graph with the LoRA added
into its weights would not compute. This script converts a UNet with a random LoRA (peft, rank
``--rank`` on the attention and feed-forward layers, as kohya-style LoRAs patch them), then times, in
one process and alternating:

- the first call at weight 1.0 (conversion, compile, call) and the first call at weight 0.5 after it;
- a UNet step of the plain graph vs the patched one (the per-step price), and vs PyTorch with the LoRA.

limner-tiny by default; ``--model sd-turbo`` for SD-Turbo's UNet shapes (random weights, ~4 GB of
memory, minutes to convert).

    .venv/bin/python benchmarks/openvino_lora.py [--model tiny|sd-turbo] [--size 64] [--rounds 15]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).parent))
from openvino_conversion import build  # the module builder of the conversion benchmark

from limner.engines.local.openvino_unet import OpenVinoUNets

TARGETS = ["to_q", "to_k", "to_v", "to_out.0", "proj_in", "proj_out", "ff.net.0.proj", "ff.net.2"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=["tiny", "sd-turbo"], default="tiny")
    parser.add_argument("--size", type=int, default=64, help="picture side in pixels (latents: a 1/8)")
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from peft import LoraConfig, inject_adapter_in_model

    plain_unet = build(args.model, "unet")
    lora_unet = build(args.model, "unet")
    lora_unet.load_state_dict(plain_unet.state_dict())
    torch.manual_seed(1)
    config = LoraConfig(r=args.rank, lora_alpha=args.rank, init_lora_weights=False, target_modules=TARGETS)
    lora_unet = inject_adapter_in_model(config, lora_unet, adapter_name="style")
    lora_unet.peft_config = {"style": config}  # type: ignore[assignment]  # what diffusers' loader sets
    inputs = _inputs(plain_unet, args.size // 8)
    with tempfile.TemporaryDirectory() as cache:
        models = OpenVinoUNets(Path(cache), threads=args.threads)
        plain, patched = models.for_unet(plain_unet), models.for_unet(lora_unet)
        first = _seconds(lambda: patched(*inputs))
        _set_weight(lora_unet, 0.5)
        second = _seconds(lambda: patched(*inputs))
        with torch.inference_mode():
            error = (patched(*inputs).sample - lora_unet(*inputs).sample).abs().max().item()
        plain(*inputs)  # converted before the timing
        rounds: dict[str, list[float]] = {"plain": [], "patched": [], "torch": []}
        with torch.inference_mode():
            for _ in range(args.rounds):
                rounds["plain"].append(_seconds(lambda: plain(*inputs)))
                rounds["patched"].append(_seconds(lambda: patched(*inputs)))
                rounds["torch"].append(_seconds(lambda: lora_unet(*inputs)))
    step = {name: statistics.median(times) for name, times in rounds.items()}
    ratios = [patched / plain for patched, plain in zip(rounds["patched"], rounds["plain"], strict=True)]
    print(f"{args.model} UNet, {args.size} px, LoRA rank {args.rank} on {len(TARGETS)} kinds of layer, "
          f"{args.threads} thread(s), {args.rounds} rounds")  # fmt: skip
    print(f"  first call at weight 1.0 (conversion + compile + call): {first:.2f} s")
    print(f"  first call at weight 0.5 after it (no conversion):       {second:.3f} s  ({first / second:.0f}x less)")
    print(f"  largest difference from PyTorch at 0.5: {error:.2e}")
    print(f"  a UNet step: plain graph {1000 * step['plain']:.1f} ms, patched {1000 * step['patched']:.1f} ms "
          f"(median ratio {statistics.median(ratios):.3f}x, min {min(ratios):.3f}, max {max(ratios):.3f}), "
          f"PyTorch with the LoRA {1000 * step['torch']:.1f} ms")  # fmt: skip


def _inputs(unet: Any, latent_side: int) -> tuple[torch.Tensor, ...]:
    """A guided step's inputs: two latents, their timestep and text embeddings."""
    width = unet.config.cross_attention_dim
    hidden = torch.randn(2, 77, width if isinstance(width, int) else width[0])
    return torch.randn(2, unet.config.in_channels, latent_side, latent_side), torch.tensor(500.0), hidden


def _set_weight(module: Any, weight: float) -> None:
    """What diffusers' ``set_adapters`` does to a peft layer: scaling = weight * alpha / rank."""
    for layer in module.modules():
        if "style" in getattr(layer, "scaling", {}):
            layer.scaling["style"] = weight * layer.lora_alpha["style"] / layer.r["style"]


def _seconds(call: Callable[[], Any]) -> float:
    started = time.perf_counter()
    with torch.inference_mode():
        call()
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
